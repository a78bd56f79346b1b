"""The owner alias `<ctl dir>/owner` (control/alias.py, hld §15.2), over real AF_UNIX sockets in
a temporary directory: it reaches whoever swapped it in last, a release never removes a
successor's, it keeps the socket's own mode, and clients get a useful error without it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from teamd_shim.control.alias import ALIAS_NAME, OwnerAlias, alias_path, missing_alias
from teamd_shim.control.transport import ControlServer, request


class Listener:
    """A unix socket that answers every line with its own name, as a shim answers requests."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o600)
        self.sock.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                if conn.recv(4096):
                    conn.sendall(b'{"ok": true, "result": "%s"}\n' % self.path.encode())

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accept(): the listener is gone at once
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(2.0)


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "ctl"
    d.mkdir(mode=0o750)
    yield d


def who(ctl: Path) -> str:
    return str(request(alias_path(str(ctl)), {"cmd": "info"}, timeout=2.0))


def test_the_alias_reaches_whoever_swapped_it_in_last(ctl: Path) -> None:
    a, b = Listener(ctl / "teamd.sock"), Listener(ctl / "teamd~2.sock")
    try:
        assert OwnerAlias(a.path).claim() is None
        assert who(ctl) == a.path
        assert OwnerAlias(a.path).claim() is None  # idempotent
        assert OwnerAlias(b.path).claim() is None  # the handover: b took over
        assert who(ctl) == b.path
        assert OwnerAlias(b.path).held() and not OwnerAlias(a.path).held()
        # the old owner exits after the takeover: the successor's alias stays
        assert OwnerAlias(a.path).release() is False
        assert who(ctl) == b.path
        assert OwnerAlias(b.path).release() is True
        assert not os.path.exists(alias_path(str(ctl)))
        assert sorted(os.listdir(ctl)) == ["teamd.sock", "teamd~2.sock"]  # no temp left
    finally:
        a.close()
        b.close()


def test_the_alias_is_the_socket_itself_so_it_cannot_widen_access(ctl: Path) -> None:
    a = Listener(ctl / "teamd.sock")
    try:
        OwnerAlias(a.path).claim()
        st, alias = os.stat(a.path), os.stat(alias_path(str(ctl)))
        assert (alias.st_ino, alias.st_uid, alias.st_gid) == (st.st_ino, st.st_uid, st.st_gid)
        assert stat.S_IMODE(alias.st_mode) == 0o600 and stat.S_ISSOCK(alias.st_mode)
        os.chmod(a.path, 0o660)  # a later chmod of the socket is the alias's too
        assert stat.S_IMODE(os.stat(alias_path(str(ctl))).st_mode) == 0o660
    finally:
        a.close()


def test_no_instance_name_can_collide_with_the_alias(ctl: Path) -> None:
    """Instances listen on `<name>.sock`; the first is usually named `teamd`."""
    assert not ALIAS_NAME.endswith(".sock")
    a = Listener(ctl / f"{ALIAS_NAME}.sock")  # an instance named like the alias
    try:
        OwnerAlias(a.path).claim()
        assert who(ctl) == a.path and os.path.exists(a.path)
    finally:
        a.close()


def test_a_killed_owners_alias_refuses_until_the_next_owner_swaps_it(ctl: Path) -> None:
    a, b = Listener(ctl / "teamd.sock"), Listener(ctl / "teamd~2.sock")
    try:
        OwnerAlias(a.path).claim()
        a.close()  # SIGKILL: the socket file and the alias stay, nobody listens
        with pytest.raises(Exception, match="Connection refused"):
            who(ctl)
        OwnerAlias(b.path).claim()  # the hot standby's promotion
        assert who(ctl) == b.path
    finally:
        b.close()


def test_a_failed_claim_is_reported_and_leaves_nothing_behind(ctl: Path) -> None:
    problem = OwnerAlias(str(ctl / "gone.sock")).claim()
    assert problem is not None and "gone.sock" in problem and "LAGs are not affected" in problem
    assert os.listdir(ctl) == []


def test_the_client_error_names_the_sockets_there_and_what_to_do(ctl: Path) -> None:
    (ctl / "teamd.sock").touch()
    (ctl / "teamd~2.sock").touch()
    msg = missing_alias(str(ctl))
    assert msg is not None
    assert "teamd.sock, teamd~2.sock" in msg and "Is a teamd-shim active?" in msg
    assert "--name" in msg and "TEAMD_SHIM_CTL_DIR" in msg
    assert "does not exist" in str(missing_alias(str(ctl / "nope")))
    a = Listener(ctl / "x.sock")
    try:
        OwnerAlias(a.path).claim()
        assert missing_alias(str(ctl)) is None
    finally:
        a.close()


def test_a_stopping_control_server_removes_its_own_alias_only(ctl: Path) -> None:
    async def run() -> tuple[bool, bool]:
        first = ControlServer(None, str(ctl / "teamd.sock"))  # type: ignore[arg-type]
        second = ControlServer(None, str(ctl / "teamd~2.sock"))  # type: ignore[arg-type]
        await first.start()
        await second.start()
        OwnerAlias(first.path).claim()
        OwnerAlias(second.path).claim()
        await first.stop()  # the old owner exits after the takeover
        kept = OwnerAlias(second.path).held()
        await second.stop()
        return kept, os.path.exists(alias_path(str(ctl)))

    kept, left = asyncio.run(run())
    assert kept and not left
