"""Who holds the owner alias (control/alias.py): the driver points it at its own socket when it
becomes the owner (takeover, promotion, start-up claim) and never as a standby (hld §15.2).
The real HandoverDriver; no Redis is reached (the store is never called on these paths)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from teamd_shim.control.alias import OwnerAlias, alias_path
from teamd_shim.db.ownership import OwnerStore
from teamd_shim.db.publisher import Publisher
from teamd_shim.db.sonic_db import Endpoint
from teamd_shim.roles.driver import HandoverDriver
from teamd_shim.roles.machine import Event, Role, RoleMachine


class NoLags:
    """The runner as the driver sees it, with no LAG (nothing to confirm or restore)."""

    lags: dict[str, Any] = {}

    def mark_dirty(self, names: object) -> None:
        pass


def driver(tmp_path: Path, name: str, role: Role) -> tuple[HandoverDriver, socket.socket]:
    endpoint = Endpoint(unix_path=str(tmp_path / "never-used.sock"))
    d = HandoverDriver(
        name,
        RoleMachine(role, epoch=3),
        OwnerStore(endpoint),
        Publisher(endpoint),
        NoLags(),  # type: ignore[arg-type]
        on_exit=lambda: None,
    )
    d.ctl_path = str(tmp_path / f"{name}.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(d.ctl_path)
    s.listen()
    return d, s


def test_a_promoted_or_taken_over_standby_holds_the_alias_a_retiring_one_never(
    tmp_path: Path,
) -> None:
    """On main: no alias at all."""
    old, s1 = driver(tmp_path, "teamd", Role.STANDBY)
    hot, s2 = driver(tmp_path, "teamd~2", Role.STANDBY)
    spare, s3 = driver(tmp_path, "teamd~3", Role.STANDBY)
    with s1, s2, s3:
        old.handle(Event.TAKEN_OVER, epoch=4)
        assert old.rm.role is Role.ACTIVE and OwnerAlias(old.ctl_path).held()
        hot.handle(Event.PROMOTED, epoch=5)  # the owner died; its hot standby took the LAGs
        assert OwnerAlias(hot.ctl_path).held() and not OwnerAlias(old.ctl_path).held()
        spare.handle(Event.RETIRE)  # a standby that is retired never touches it
        assert OwnerAlias(hot.ctl_path).held()
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".sock")) == [
            "owner"
        ]
    assert alias_path(str(tmp_path)) == str(tmp_path / "owner")
