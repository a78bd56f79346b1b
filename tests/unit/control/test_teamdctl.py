"""teamdctl's command line (control/teamdctl.py) as libteam's utils/teamdctl.c reads it, and
the `teamdctl` / `teamd-shim ctl` entry points against real unix sockets (the owner alias)."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from teamd_shim import cli
from teamd_shim.control import teamdctl
from teamd_shim.control.alias import OwnerAlias
from teamd_shim.control.teamdctl import Invocation, Outcome, dumps, parse, render, request


def inv(*argv: str) -> Invocation:
    out = parse(list(argv))
    assert isinstance(out, Invocation), out
    return out


def refused(*argv: str) -> Outcome:
    out = parse(list(argv))
    assert isinstance(out, Outcome), out
    return out


@pytest.mark.parametrize(
    ("argv", "req"),
    [
        (["PortChannel0001", "state", "dump"], {"cmd": "state_dump"}),
        (["PortChannel0001", "st", "d"], {"cmd": "state_dump"}),  # any prefix, as libteam
        (
            ["PortChannel0001", "state", "item", "get", "runner.retry_count"],
            {"cmd": "state_item_get", "path": "runner.retry_count"},
        ),
        (
            ["PortChannel0001", "state", "item", "set", "runner.retry_count", "5"],
            {"cmd": "state_item_set", "path": "runner.retry_count", "value": "5"},
        ),
        (["PortChannel0001", "state"], {"cmd": "state_dump"}),  # state view
        (["PortChannel0001", "config", "dump"], {"cmd": "config_dump"}),
        (["PortChannel0001", "c", "d", "noports"], {"cmd": "config_dump"}),
        (["PortChannel0001", "port", "present", "Ethernet0"], {"cmd": "state_dump"}),
        (["-o", "PortChannel0001", "state", "dump"], {"cmd": "state_dump"}),
        (["PortChannel0001", "state", "dump", "-U"], {"cmd": "state_dump"}),  # GNU order
    ],
)
def test_sonics_words_become_requests(argv: list[str], req: dict[str, str]) -> None:
    assert request(inv(*argv)) == {**req, "lag": "PortChannel0001"}


def test_the_command_picked_is_libteams() -> None:
    assert inv("P", "state").command.name == "state"  # a view, not a dump
    assert inv("P", "s", "v").command.name == "state view"
    assert inv("P", "port", "p", "e0").command.name == "port present"  # before port config
    assert inv("P", "config", "dump", "actual").command.name == "config dump actual"
    i = inv("-vv", "--one", "--ctl-dir=/run/x", "P", "state")
    assert (i.verbosity, i.oneline, i.ctl_dir) == (3, True, "/run/x")
    assert inv("--ctl-dir", "/run/y", "P", "state").ctl_dir == "/run/y"


@pytest.mark.parametrize(
    ("argv", "stderr"),
    [
        ([], "No team device specified.\n"),
        (["P"], "None or incomplete command\n"),
        (["P", "config"], "None or incomplete command\n"),
        (["P", "stat", "bogus"], 'Unknown command "bogus".\n'),
        (["P", "state", "item", "get"], 'Command line parameter "ITEMPATH" expected.\n'),
        (["P", "state", "item", "set", "runner.retry_count"], 'parameter "VALUE" expected'),
        (["P", "state", "item", "get", "a", "b"], 'Unknown command "a".\n'),  # get is full
        (["-x", "P", "state"], "unknown option."),
        (["--ctl-dir"], "requires an argument"),
    ],
)
def test_bad_command_lines_fail_as_teamdctl_does(argv: list[str], stderr: str) -> None:
    out = refused(*argv)
    assert out.code == 1 and stderr in out.stderr
    assert out.stdout.startswith("teamdctl [options] teamdevname command")  # the help


def test_help_and_the_interfaces_we_do_not_have() -> None:
    assert refused("-h").code == 0 and "state item set ITEMPATH VALUE" in refused("-h").stdout
    assert refused("-D", "P", "state") == Outcome(1, stderr="D-Bus support is not compiled-in\n")
    assert refused("-Z", "tcp://x", "P", "state").stderr == "ZeroMQ support is not compiled-in\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["PortChannel0001", "port", "add", "Ethernet0"],
        ["PortChannel0001", "port", "remove", "Ethernet0"],
        ["PortChannel0001", "port", "config", "update", "Ethernet0", '{"lacp_key": 1}'],
    ],
)
def test_teammgrds_commands_are_refused_before_anything_is_sent(argv: list[str]) -> None:
    i = inv(*argv)
    assert request(i) is None
    out = teamdctl.unsupported(i)
    assert out.code == 1 and "not supported by teamd-shim" in out.stderr
    assert "nothing was sent" in out.stderr and "CONFIG_DB" in out.stderr


def test_json_is_printed_as_janssons_json_dumps() -> None:
    """JSON_INDENT(4)|JSON_ENSURE_ASCII|JSON_SORT_KEYS, and indent 0 with -o (libteam)."""
    obj = {"b": {"y": [1, 2], "x": {}}, "a": "é", "c": True}
    assert dumps(obj) == (
        '{\n    "a": "\\u00e9",\n    "b": {\n        "x": {},\n        "y": [\n'
        '            1,\n            2\n        ]\n    },\n    "c": true\n}'
    )
    assert dumps(obj, oneline=True) == '{"a": "\\u00e9", "b": {"x": {}, "y": [1, 2]}, "c": true}'


def lacpdu(system: str, port: int, state: int) -> dict[str, Any]:
    return {
        "system_priority": 65535,
        "system": system,
        "key": 10001,
        "port_priority": 255,
        "port": port,
        "state": state,
    }


DUMP: dict[str, Any] = {
    "setup": {
        "runner_name": "lacp",
        "kernel_team_mode_name": "loadbalance",
        "dbus_enabled": False,
        "zmq_enabled": False,
        "debug_level": 0,
        "daemonized": False,
        "pid": 42,
        "pid_file": "",
    },
    "ports": {
        "Ethernet0": {
            "ifinfo": {"ifindex": 7, "ifname": "Ethernet0", "dev_addr": "02:00:00:00:00:01"},
            "link": {"up": True, "speed": 10000, "duplex": "full"},
            "link_watches": {
                "up": True,
                "list": {
                    "link_watch_0": {
                        "name": "ethtool",
                        "up": True,
                        "down_count": 0,
                        "delay_up": 0,
                        "delay_down": 0,
                    }
                },
            },
            "runner": {
                "selected": True,
                "state": "current",
                "key": 10001,
                "prio": 255,
                "aggregator": {"id": 7, "selected": True},
                "actor_lacpdu_info": lacpdu("02:00:00:00:00:01", 1, 0x3F),
                "partner_lacpdu_info": lacpdu("02:00:00:00:00:02", 3, 0x3D),
            },
        }
    },
    "runner": {"active": True, "fast_rate": True, "sys_prio": 65535},
}


def test_state_view_has_teamdctls_lines_and_indents() -> None:
    """Read off libteam's stateview_json_*_process: two spaces per level."""
    assert render(inv("P", "state"), DUMP).stdout == (
        "setup:\n"
        "  runner: lacp\n"
        "ports:\n"
        "  Ethernet0\n"
        "    link watches:\n"
        "      link summary: up\n"
        "      instance[link_watch_0]:\n"
        "        name: ethtool\n"
        "        link: up\n"
        "        down count: 0\n"
        "    runner:\n"
        "      aggregator ID: 7, Selected\n"
        "      selected: yes\n"
        "      state: current\n"
        "runner:\n"
        "  active: yes\n"
        "  fast rate: yes\n"
    )
    verbose = render(inv("-v", "P", "state", "view"), DUMP).stdout
    assert "  PID: 42\n" in verbose and "    ethtool link: 10000mbit/fullduplex/up\n" in verbose
    partner = "      partner LACPDU info:\n        system priority: 65535\n        system: 02:"
    assert partner in verbose
    assert "        state: 0x3d\n" in verbose and "  system priority: 65535\n" in verbose


def test_replies_are_printed_as_teamdctl_prints_them() -> None:
    assert render(inv("P", "state", "item", "get", "runner.retry_count"), 5).stdout == "5\n"
    assert render(inv("P", "state", "item", "get", "x"), True).stdout == "true\n"
    assert render(inv("P", "state", "item", "set", "runner.retry_count", "5"), 5) == Outcome(0)
    assert json.loads(render(inv("P", "state", "dump"), DUMP).stdout) == DUMP
    assert render(inv("P", "port", "present", "Ethernet0"), DUMP) == Outcome(0)
    absent = render(inv("P", "port", "present", "Ethernet4"), DUMP)
    assert absent == Outcome(1, stderr="command call failed (No such device)\n")
    cfg = {"device": "P", "ports": {"Ethernet0": {"lacp_key": 1}}}
    assert json.loads(render(inv("P", "config", "dump", "noports"), cfg).stdout) == {"device": "P"}
    assert json.loads(render(inv("P", "port", "config", "dump", "Ethernet0"), cfg).stdout) == {
        "lacp_key": 1
    }
    broken = render(inv("P", "state"), {"setup": {}})
    assert broken.code == 1 and "Failed to parse JSON dump" in broken.stderr


# ---- the entry points, against real unix sockets ------------------------------------------
class FakeShim:
    """A control socket that records requests and answers like a shim of `name`."""

    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name = str(path), name
        self.seen: list[dict[str, Any]] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                req = json.loads(conn.makefile().readline())
                self.seen.append(req)
                result: Any = {"state_item_get": 5, "state_item_set": 5}.get(req["cmd"])
                if req["cmd"] == "state_dump":
                    result = {**DUMP, "setup": {**DUMP["setup"], "pid_file": self.name}}
                conn.sendall((json.dumps({"ok": True, "result": result}) + "\n").encode())

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "ctl"
    d.mkdir(mode=0o750)
    yield d


def test_teamdctl_reaches_the_owner_among_stale_and_standby_sockets(
    ctl: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On main: no `teamdctl`, and `teamd-shim ctl` with three sockets asked `teamd-shim.sock`."""
    (ctl / "teamd.sock").touch()  # a killed shim's
    standby, owner = FakeShim(ctl / "teamd~3.sock", "teamd~3"), FakeShim(ctl / "teamd~2.sock", "t2")
    try:
        OwnerAlias(owner.path).claim()
        monkeypatch.setenv("TEAMD_SHIM_CTL_DIR", str(ctl))
        assert cli.teamdctl_main(["PortChannel0001", "state", "dump"]) == 0
        assert json.loads(capsys.readouterr().out)["setup"]["pid_file"] == "t2"
        argv = ["PortChannel0001", "state", "item", "set", "runner.retry_count", "5"]
        assert cli.teamdctl_main(argv) == 0 and capsys.readouterr().out == ""
        assert cli.teamdctl_main(["PortChannel0001", "state", "item", "get", "runner.r"]) == 0
        assert capsys.readouterr().out == "5\n"
        assert owner.seen[1] == {
            "cmd": "state_item_set",
            "lag": "PortChannel0001",
            "path": "runner.retry_count",
            "value": "5",
        }
        # `teamd-shim ctl` defaults to the owner too; --name still picks one instance
        assert cli.main(["--ctl-dir", str(ctl), "ctl", "PortChannel0001", "state", "dump"]) == 0
        assert json.loads(capsys.readouterr().out)["setup"]["pid_file"] == "t2"
        named = ["--ctl-dir", str(ctl), "--name", "teamd~3", "ctl", "PortChannel0001", "st", "d"]
        assert cli.main(named) == 0
        assert json.loads(capsys.readouterr().out)["setup"]["pid_file"] == "teamd~3"
        # `teamd-shim ctl` prints the value a set left, as it always has; teamdctl nothing
        argv = ["--ctl-dir", str(ctl), "ctl", "PortChannel0001", "state", "item", "set", "x", "5"]
        assert cli.main(argv) == 0 and capsys.readouterr().out == "5\n"
        assert standby.seen and len(owner.seen) == 5
    finally:
        standby.close()
        owner.close()


def test_without_an_owner_alias_teamdctl_says_what_is_there(
    ctl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (ctl / "teamd.sock").touch()
    assert cli.teamdctl_main(["--ctl-dir", str(ctl), "PortChannel0001", "state", "dump"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("teamdctl_connect failed (no ") and "teamd.sock" in err
    assert "Is a teamd-shim active?" in err
    assert not os.path.exists(ctl / "owner")
