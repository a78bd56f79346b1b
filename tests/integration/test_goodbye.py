"""Goodbye on a real removal and admin down (issue 9 items 1 and 2), judged by Open vSwitch.

A member or LAG removed from CONFIG_DB, and a cold stop (SIGTERM), send one last LACPDU with
Sync, Collecting and Distributing cleared, so the partner stops using the link at once (here
within 0.5 s) instead of after its 3 s receive timeout; the other members are untouched. The
handover never sends one (test_handover.py: 30 runs, no member line at the partner). Admin down
does the same for every member of the LAG and then keeps it silent until admin up.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers.lab_helpers import all_negotiated, wait_for

from teamd_lab.lab import Lab
from teamd_lab.shim import shim_command

pytestmark = pytest.mark.integration
GOODBYE_LIMIT_S = 0.5  # the partner's 3 s timeout would be the limit without a goodbye


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory):
    lab = Lab(Path(tmp_path_factory.mktemp("gb")), prefix="gb")
    lab.up(2, 2, shim_cmd=shim_command(lab))
    wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 15.0, "all bonds negotiated")
    time.sleep(1.0)
    yield lab
    lab.down()


def enabled(lab: Lab) -> dict[str, bool]:
    return {m: up for b in lab.ovs.bond_show().values() for m, up in b["members"].items()}


def time_until_disabled(lab: Lab, ports: set[str], limit: float = 3.5) -> float:
    t0 = time.monotonic()
    wait_for(
        lambda: not any(enabled(lab).get(p) for p in ports),
        limit,
        f"{sorted(ports)} disabled at the partner",
        interval=0.02,
    )
    return time.monotonic() - t0


def test_member_removed_from_config_is_let_go_at_once(lab: Lab) -> None:
    (lag, port, pport), (_, _, other) = lab.members()[0], lab.members()[1]
    lab.redis().delete(f"PORTCHANNEL_MEMBER|{lag}|{port}")  # the veth stays: only config goes
    took = time_until_disabled(lab, {pport})
    print(f"\nmember removed: partner disabled {pport} after {took:.3f} s")
    assert took <= GOODBYE_LIMIT_S
    time.sleep(0.5)
    rest = enabled(lab)
    assert rest[other] and all(v for p, v in rest.items() if p != pport), rest


def test_lag_removed_from_config_is_let_go_at_once(lab: Lab) -> None:
    lag = lab.lags()[1]
    ports = {pp for lg, _, pp in lab.members() if lg == lag}
    r = lab.redis()
    for lg, dut, _ in lab.members():
        if lg == lag:
            r.delete(f"PORTCHANNEL_MEMBER|{lg}|{dut}")
    r.delete(f"PORTCHANNEL|{lag}")
    took = time_until_disabled(lab, ports)
    print(f"\nLAG removed: partner disabled {sorted(ports)} after {took:.3f} s")
    assert took <= GOODBYE_LIMIT_S
    assert all(v for p, v in enabled(lab).items() if p not in ports)


def test_cold_stop_lets_every_member_go_at_once(lab: Lab) -> None:
    ports = {pp for _, _, pp in lab.members()}
    (ref,) = lab.registered_shims().values()
    t0 = time.monotonic()
    ref.stop(5.0)  # SIGTERM: teamd's cold stop; returns once the process is gone
    time_until_disabled(lab, ports)
    took = time.monotonic() - t0
    print(f"\nSIGTERM: partner disabled all {len(ports)} members {took:.3f} s after the signal")
    assert took <= GOODBYE_LIMIT_S + 0.5  # the process's own exit included


def test_admin_down_stops_the_lag_and_admin_up_renegotiates(lab: Lab) -> None:
    """PORTCHANNEL admin_status down: goodbye on every member, then no PDU from us while down,
    oper_status down; up again: negotiated within 5 s. The other LAG never notices."""
    from teamd_lab.record_analysis import load_records

    lag, other = lab.lags()[0], lab.lags()[1]
    ports = {pp for lg, _, pp in lab.members() if lg == lag}
    others = {pp for lg, _, pp in lab.members() if lg == other}
    rec = lab.start_recorder()
    lab.redis().hset(f"PORTCHANNEL|{lag}", "admin_status", "down")
    took = time_until_disabled(lab, ports)
    print(f"\nadmin down: partner disabled {sorted(ports)} after {took:.3f} s")
    assert took <= 3.5
    time.sleep(0.5)
    t_quiet = time.monotonic()
    time.sleep(3.0)
    heard = [f for f in load_records(rec) if f.iface in ports and f.t > t_quiet and f.subtype == 1]
    assert heard == [], f"{len(heard)} PDUs from us while admin down"
    wait_for(
        lambda: lab.redis(6).hget(f"LAG_TABLE|{lag}", "oper_status") == "down",
        3.0,
        "STATE_DB oper_status down",
    )
    assert all(enabled(lab)[p] for p in others)
    lab.redis().hset(f"PORTCHANNEL|{lag}", "admin_status", "up")
    t0 = time.monotonic()
    wait_for(
        lambda: all(enabled(lab).get(p) for p in ports),
        5.0,
        "renegotiated after admin up",
        interval=0.05,
    )
    print(f"admin up: negotiated again after {time.monotonic() - t0:.3f} s")
    wait_for(
        lambda: lab.redis(6).hget(f"LAG_TABLE|{lag}", "oper_status") == "up",
        3.0,
        "STATE_DB oper_status up",
    )
    assert all(enabled(lab)[p] for p in others)


def test_sighup_is_ignored_and_sigusr2_exits_keeping_the_lags(lab: Lab) -> None:
    """teamd's signals as SONiC patches them: SIGHUP changes nothing; SIGUSR2 (fast-reboot)
    sends one PDU on every port and exits without a goodbye, leaving the LAGs to the partner's
    timeout and every STATE_DB entry in place."""
    import os
    import signal

    ports = {pp for _, _, pp in lab.members()}
    (ref,) = lab.registered_shims().values()
    offset = lab.ovs.log_offset()
    os.kill(ref.pid, signal.SIGHUP)
    time.sleep(1.5)
    assert ref.alive(), "SIGHUP stopped the shim"
    assert lab.ovs.member_events(offset) == []
    assert all(enabled(lab)[p] for p in ports)

    t0 = time.monotonic()
    os.kill(ref.pid, signal.SIGUSR2)
    assert ref._wait_gone(2.0), "SIGUSR2 did not make the shim exit within 2 s"
    gone = time.monotonic() - t0
    # no goodbye: within the partner's 3 s timeout of the exit's last PDU nothing moves
    assert gone < 2.0
    assert all(enabled(lab)[p] for p in ports), enabled(lab)
    assert lab.ovs.member_events(offset) == []
    state = lab.redis(6)
    for lag in lab.lags():
        assert state.hget(f"LAG_TABLE|{lag}", "oper_status") == "up"
    print(f"\nSIGUSR2: exited {gone:.3f} s after the signal, the partner still has every member")
