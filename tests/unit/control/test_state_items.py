"""The state-item table serves `state dump`, `state item get/set` and the STATE_DB fields.

Its replies are an interface (teamdctl users, SONiC's tools, the integration tiers): the
reference below is the hand-written dump the table replaced, kept verbatim, and every reply and
error is compared with it as bytes (JSON key order included)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from teamd_shim.control.state_items import (
    LAG_PATHS,
    MEMBER_PATHS,
    STATE_ITEMS,
    LagState,
    PortState,
    StateItem,
    StateItems,
    state_db_lag,
    state_db_member,
    state_dump,
)
from teamd_shim.control.transport import ControlError, ControlServer
from teamd_shim.daemon.runner import LagRunner
from teamd_shim.db.publisher import Publisher
from teamd_shim.db.sonic_db import Endpoint
from teamd_shim.io.dataplane import NullDataplane
from teamd_shim.io.dataplane.base import TeamDevice
from teamd_shim.io.links import LinkInfo
from teamd_shim.lacp import Lag, LagSettings
from teamd_shim.lacp.port import COUNTERS
from teamd_shim.model.config import LagConfig
from teamd_shim.model.running_lag import RunningLag
from teamd_shim.roles.machine import Role, RoleMachine

SYS_A, SYS_B = bytes.fromhex("0200000000aa"), bytes.fromhex("0200000000bb")
PORTS = {"e0": 1, "e1": 2}
CFG = LagConfig(
    name="PortChannel1",
    admin_up=True,
    mtu=9100,
    min_links=1,
    fast_rate=True,
    key=1,
    system="02:00:00:00:00:aa",
    members=tuple(PORTS),
)
DEV = TeamDevice(ifindex=3, dev_addr="02:00:00:00:00:aa", admin_up=True, oper_up=True, mtu=9100)
LINKS = {
    "e0": LinkInfo(
        name="e0", ifindex=7, mac="02:00:00:00:10:01", up=True, speed=25000, duplex="full"
    )
}
KNOWN = (
    "runner.retry_count, runner.enable_retry_count_feature, ports.<port>.runner.partner_retry_count"
)
SETTABLE = "runner.retry_count, runner.enable_retry_count_feature"


def make_lag(system: bytes, key: int) -> Lag:
    lag = Lag(LagSettings("PortChannel1", system, key, fast_rate=True))
    for name, num in PORTS.items():
        lag.add_port(
            name, port_number=num, mac=system[:4] + bytes([0x10, num]), link_up=True, now=0.0
        )
    return lag


def converged() -> Lag:
    """Our LAG after 5 s with a fast partner on a zero-delay wire: every counter, partner and
    aggregator field has a value of its own."""
    a, b = make_lag(SYS_A, 1), make_lag(SYS_B, 2)
    now = 0.0
    while now < 5.0:
        for x, y in ((a, b), (b, a)):
            x.on_timer(now)
            for port, frame in x.frames_to_send(now):
                y.receive(port, frame, now)
        now += 0.05
    return a


# ---- the reference: the dump as it was written by hand before the table ------------------


def old_port_dump(lag: Lag, port: str, link: LinkInfo | None) -> dict[str, Any]:
    view = lag.port_view(port)
    up = bool(link and link.up)
    return {
        "ifinfo": {
            "ifindex": link.ifindex if link else 0,
            "ifname": port,
            "dev_addr": link.mac if link else "00:00:00:00:00:00",
            "dev_addr_len": 6,
        },
        # the netdev's own speed and duplex (ethtool), not a constant
        "link": {
            "up": up,
            "speed": link.speed if link and up else 0,
            "duplex": link.duplex if link and up else "half",
        },
        "link_watches": {
            "up": up,
            "list": {
                "link_watch_0": {
                    "name": "ethtool",
                    "up": up,
                    "down_count": view.counters["down_count"],
                    "delay_up": 0,
                    "delay_down": 0,
                }
            },
        },
        "runner": {
            "selected": view.selected,
            "state": view.state,
            "key": view.actor.to_dict()["key"],
            "prio": view.actor.to_dict()["port_priority"],
            "aggregator": {"id": view.aggregator_id, "selected": view.aggregator_selected},
            "actor_lacpdu_info": view.actor.to_dict(),
            "partner_lacpdu_info": view.partner.to_dict(),
            "loopback": view.loopback,
            "partner_retry_count": view.partner_retry_count,
            "counters": {c: view.counters[c] for c in COUNTERS if c != "down_count"},
        },
    }


def old_state_dump(
    lag: Lag, cfg: LagConfig, dev: TeamDevice, links: dict[str, LinkInfo], mode: str = "loadbalance"
) -> dict[str, Any]:
    return {
        "setup": {
            "runner_name": "lacp",
            "kernel_team_mode_name": mode,
            "dbus_enabled": False,
            "zmq_enabled": False,
            "debug_level": 0,
            "daemonized": False,
            "pid": os.getpid(),
            "pid_file": "",
        },
        "team_device": {
            "ifinfo": {
                "ifindex": dev.ifindex,
                "ifname": cfg.name,
                "dev_addr": dev.dev_addr,
                "dev_addr_len": 6,
            }
        },
        "runner": {
            "active": True,
            "sys_prio": 65535,
            "fast_rate": cfg.fast_rate,
            "select_policy": "lacp_prio_stable",
            "fallback": False,
            "enable_retry_count_feature": lag.retry_count_feature,
            "retry_count": lag.own_retry_count,
        },
        "ports": {p: old_port_dump(lag, p, links.get(p)) for p in lag.ports},
    }


OLD_MEMBER_PATHS = (
    "ifinfo.dev_addr",
    "ifinfo.ifindex",
    "link.up",
    "link_watches.list.link_watch_0.up",
    "runner.actor_lacpdu_info.port",
    "runner.actor_lacpdu_info.state",
    "runner.actor_lacpdu_info.system",
    "runner.partner_lacpdu_info.port",
    "runner.partner_lacpdu_info.state",
    "runner.partner_lacpdu_info.system",
    "runner.aggregator.id",
    "runner.aggregator.selected",
    "runner.selected",
    "runner.state",
    "runner.loopback",
    "runner.partner_retry_count",
    "runner.counters.rx_bad",
    "runner.counters.rx_truncated",
    "runner.counters.rx_marker",
    "runner.counters.rx_loopback",
)
OLD_LAG_PATHS = (
    "setup.kernel_team_mode_name",
    "setup.pid",
    "runner.active",
    "runner.fallback",
    "runner.fast_rate",
    "team_device.ifinfo.dev_addr",
    "team_device.ifinfo.ifindex",
)


def leaf(d: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        d = d[part]
    return d


def lag_state(lag: Lag) -> LagState:
    return LagState(lag, CFG, lambda: DEV, LINKS)


# ---- state dump and STATE_DB ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["loadbalance", "roundrobin"])
def test_dump_is_the_hand_written_one_byte_for_byte(mode: str) -> None:
    lag = converged()
    new = state_dump(lag, CFG, DEV, LINKS, mode=mode)
    assert json.dumps(new) == json.dumps(old_state_dump(lag, CFG, DEV, LINKS, mode))


def test_state_db_fields_are_the_hand_listed_ones_in_their_order() -> None:
    assert MEMBER_PATHS == OLD_MEMBER_PATHS
    assert LAG_PATHS == OLD_LAG_PATHS
    lag = converged()
    dump = state_dump(lag, CFG, DEV, LINKS)
    lag_fields = state_db_lag(dump, DEV)
    assert list(lag_fields) == [*OLD_LAG_PATHS, "admin_status", "oper_status", "mtu", "state"]
    assert lag_fields["runner.active"] == "true" and lag_fields["setup.pid"] == str(os.getpid())
    for port in PORTS:
        fields = state_db_member(dump["ports"][port])
        assert list(fields) == list(OLD_MEMBER_PATHS)
        assert fields["runner.state"] == "current" and fields["runner.selected"] == "true"


def test_every_registered_item_is_in_the_dump_with_its_getters_value() -> None:
    lag = converged()
    src = lag_state(lag)
    dump = STATE_ITEMS.dump(src)
    leaves = {i.path for i in STATE_ITEMS.lag} | {
        f"ports.{p}.{i.path}" for p in PORTS for i in STATE_ITEMS.port
    }
    for item in STATE_ITEMS.lag:
        assert leaf(dump, item.path) == item.getter(src), item.path
    for p in PORTS:
        port = PortState.of(src, p)
        for pitem in STATE_ITEMS.port:
            assert leaf(dump, f"ports.{p}.{pitem.path}") == pitem.getter(port), pitem.path

    def count(d: Any) -> int:
        return sum(count(v) for v in d.values()) if isinstance(d, dict) else 1

    assert count(dump) == len(leaves)  # nothing in the dump that is not an item


def test_the_dump_reads_the_device_the_item_get_does_not() -> None:
    asked: list[int] = []

    def device() -> TeamDevice:
        asked.append(1)
        return DEV

    lag = converged()
    src = LagState(lag, CFG, device, LINKS)
    for path in STATE_ITEMS.served:
        STATE_ITEMS.get(src, path.replace("<port>", "e0"))
    assert not asked
    STATE_ITEMS.dump(src)
    STATE_ITEMS.dump(src)
    assert asked == [1]  # once per LagState


# ---- state item get / set ----------------------------------------------------------------


def test_the_served_and_settable_items_are_todays() -> None:
    assert ", ".join(STATE_ITEMS.served) == KNOWN
    assert ", ".join(STATE_ITEMS.settable) == SETTABLE


@pytest.mark.parametrize(
    "path",
    [
        "runner.retry_count",
        "runner.enable_retry_count_feature",
        "ports.e0.runner.partner_retry_count",
        "ports.e1.runner.partner_retry_count",
    ],
)
def test_get_of_every_served_item_is_its_dump_value(path: str) -> None:
    lag = converged()
    got = STATE_ITEMS.get(lag_state(lag), path)
    assert json.dumps(got) == json.dumps(leaf(old_state_dump(lag, CFG, DEV, LINKS), path))


@pytest.mark.parametrize(
    "path",
    [
        "runner.nonsense",
        "",
        "None",
        "setup.pid",
        "runner.fast_rate",
        "ports.e0.runner.state",
        "ports.zz.runner.partner_retry_count",
        "ports..runner.partner_retry_count",
        "ports.e0.runner.partner_retry_count.x",
        "ports.e0",
        "ports",
        "runner.retry_count.x",
        "ports.e0.x.runner.partner_retry_count",
    ],
)
def test_get_of_anything_else_names_the_items_there_are(path: str) -> None:
    with pytest.raises(KeyError) as e:
        STATE_ITEMS.get(lag_state(converged()), path)
    assert e.value.args == (f"no state item {path!r} (known: {KNOWN})",)


def test_set_of_every_settable_item() -> None:
    lag = converged()
    src = lag_state(lag)
    STATE_ITEMS.set(src, "runner.retry_count", "5", 6.0)
    assert STATE_ITEMS.get(src, "runner.retry_count") == 5 == lag.own_retry_count
    STATE_ITEMS.set(src, "runner.enable_retry_count_feature", "False", 6.0)
    assert STATE_ITEMS.get(src, "runner.enable_retry_count_feature") is False
    assert lag.own_retry_count == 3
    STATE_ITEMS.set(src, "runner.enable_retry_count_feature", "TRUE", 6.0)
    assert lag.retry_count_feature is True


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        ("runner.retry_count", "abc", "runner.retry_count must be an integer 3..255, got 'abc'"),
        ("runner.retry_count", "None", "runner.retry_count must be an integer 3..255, got 'None'"),
        ("runner.retry_count", "2", "retry_count must be 3..255, got 2"),
        ("runner.retry_count", "300", "retry_count must be 3..255, got 300"),
        (
            "runner.enable_retry_count_feature",
            "maybe",
            "runner.enable_retry_count_feature must be true or false, got 'maybe'",
        ),
    ],
)
def test_set_of_a_bad_value(path: str, value: str, error: str) -> None:
    with pytest.raises(ValueError) as e:
        STATE_ITEMS.set(lag_state(converged()), path, value, 6.0)
    assert e.value.args == (error,)


@pytest.mark.parametrize(
    "path",
    ["ports.e0.runner.partner_retry_count", "runner.nonsense", "setup.pid", "runner.fast_rate", ""],
)
def test_set_of_anything_else_names_the_settable_items(path: str) -> None:
    with pytest.raises(KeyError) as e:
        STATE_ITEMS.set(lag_state(converged()), path, "4", 6.0)
    assert e.value.args == (f"state item {path!r} cannot be set (settable: {SETTABLE})",)


# ---- through the runner and the control server, as teamdctl reaches them -----------------


class FakeShim:
    """The control server's view of a shim, over a real LagRunner (nothing started)."""

    def __init__(self, role: Role) -> None:
        rm = RoleMachine(role, epoch=1 if role is Role.ACTIVE else None)
        self.runner = LagRunner(
            NullDataplane(),
            Publisher(Endpoint(unix_path="/nonexistent")),
            rm,
            on_effects=lambda effects: None,
            on_rx=lambda *a: None,
        )
        self.runner.lags["PortChannel1"] = RunningLag(cfg=CFG, lacp=converged())
        self.runner.port_lag = dict.fromkeys(PORTS, "PortChannel1")
        self.runner.links = dict(LINKS)
        self.lags = self.runner.lags

    def dump(self, name: str) -> dict[str, Any]:
        return self.runner.dump(name)

    def state_item_get(self, name: str, path: str) -> Any:
        return self.runner.state_item_get(name, path)

    def state_item_set(self, name: str, path: str, value: str) -> Any:
        return self.runner.state_item_set(name, path, value, who="teamd")


def ask(target: FakeShim, **req: Any) -> str:
    """The reply line the control socket sends (ControlServer._client's framing)."""
    import asyncio

    server = ControlServer(target, "/nonexistent/x.sock")  # type: ignore[arg-type]
    try:
        return json.dumps({"ok": True, "result": asyncio.run(server.handle(req))})
    except ControlError as e:
        return json.dumps({"ok": False, "error": str(e)})


def test_control_replies() -> None:
    t = FakeShim(Role.ACTIVE)
    lag = {"lag": "PortChannel1"}
    assert (
        ask(t, cmd="state_item_get", path="runner.retry_count", **lag)
        == '{"ok": true, "result": 3}'
    )
    assert (
        ask(t, cmd="state_item_get", path="ports.e1.runner.partner_retry_count", **lag)
        == '{"ok": true, "result": 3}'
    )
    assert ask(t, cmd="state_item_get", path="runner.nonsense", **lag) == json.dumps(
        {"ok": False, "error": f"no state item 'runner.nonsense' (known: {KNOWN})"}
    )
    assert ask(t, cmd="state_item_get", **lag) == json.dumps(
        {"ok": False, "error": f"no state item 'None' (known: {KNOWN})"}
    )
    assert (
        ask(t, cmd="state_item_set", path="runner.retry_count", value="5", **lag)
        == '{"ok": true, "result": 5}'
    )
    # the server strips quotes off an error's ends, as it always has
    assert (
        ask(t, cmd="state_item_set", path="runner.retry_count", value="x", **lag)
        == '{"ok": false, "error": "runner.retry_count must be an integer 3..255, got \'x"}'
    )
    assert (
        ask(t, cmd="state_item_set", path="runner.enable_retry_count_feature", value="false", **lag)
        == '{"ok": true, "result": false}'
    )
    assert ask(t, cmd="state_item_set", path="runner.retry_count", value="7", **lag) == json.dumps(
        {
            "ok": False,
            "error": "the retry count feature is disabled "
            "(runner.enable_retry_count_feature is false)",
        }
    )
    assert ask(t, cmd="state_item_set", path="setup.pid", value="1", **lag) == json.dumps(
        {"ok": False, "error": f"state item 'setup.pid' cannot be set (settable: {SETTABLE})"}
    )
    running = t.runner.lags["PortChannel1"]
    old = old_state_dump(running.lacp, CFG, t.runner.device(running), t.runner.links)
    assert ask(t, cmd="state_dump", **lag) == json.dumps({"ok": True, "result": old})


def test_only_the_active_sets_whatever_the_path() -> None:
    t = FakeShim(Role.STANDBY)
    for path in ("runner.retry_count", "runner.nonsense"):
        assert (
            ask(t, cmd="state_item_set", lag="PortChannel1", path=path, value="5")
            == '{"ok": false, "error": "teamd is standby: set it on the active instance"}'
        )
    assert (
        ask(t, cmd="state_item_get", lag="PortChannel1", path="runner.retry_count")
        == '{"ok": true, "result": 3}'
    )


# ---- the table's own rules ---------------------------------------------------------------


def test_a_table_with_a_gap_twin_or_unserved_setter_is_refused() -> None:
    def get(s: LagState) -> Any:
        return 1

    def put(s: LagState, v: str, now: float) -> None:
        return None

    with pytest.raises(ValueError, match="positions"):
        StateItems([StateItem("a", get, state_db=1)], [])
    with pytest.raises(ValueError, match="twice"):
        StateItems([StateItem("a", get), StateItem("a", get)], [])
    with pytest.raises(ValueError, match="settable"):
        StateItems([StateItem("a", get, put)], [])


def test_a_settable_per_port_item_is_set_on_that_port() -> None:
    seen: list[tuple[str, str]] = []

    def put(p: PortState, v: str, now: float) -> None:
        seen.append((p.name, v))

    table = StateItems([], [StateItem("runner.x", lambda p: p.name, put, served=0)])
    src = lag_state(converged())
    assert table.get(src, "ports.e1.runner.x") == "e1"
    table.set(src, "ports.e1.runner.x", "on", 1.0)
    assert seen == [("e1", "on")]
    with pytest.raises(KeyError):
        table.set(src, "ports.zz.runner.x", "on", 1.0)
