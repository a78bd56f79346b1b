"""`sonic-installer upgrade-docker teamd --warm`'s sequence, played against the shim as SONiC's
tool plays it against stock teamd (sonic-utilities `sonic_installer/main.py`, hld §6.1).

Enable warm restart for teamd, `pkill -USR1` the LAG daemon, HDEL teamsyncd's `state`, kill the
container (here: SIGKILL the process), start it again (a cold start of the shim), then wait for
`WARM_RESTART_TABLE|teamsyncd` `state == reconciled` (the tool gives up after about 180 s).
The sequence must complete, with the rows SONiC's `show warm_restart state` expects. Its cost at
the partner is printed, not asserted: this is SONiC's own, non-hitless path (README "Run it on a
SONiC switch"); `warm-restart teamd` is the hitless one. Run twice: without and with teamd's
warm-boot files (`--warmboot-dir`, hld §6.2), which the warm start must consume.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from helpers.lab_helpers import all_negotiated, max_gaps, wait_for

from teamd_lab.lab import Lab
from teamd_lab.shim import shim_command

pytestmark = pytest.mark.integration
SONIC_INSTALLER_LIMIT_S = 180.0


def _lab(tmp_path_factory: pytest.TempPathFactory, extra: list[str]) -> Lab:
    lab = Lab(Path(tmp_path_factory.mktemp("si")), prefix="si")
    lab.up(2, 2, shim_cmd=shim_command(lab, extra=extra), recorder=True)
    wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 15.0, "all bonds negotiated")
    time.sleep(1.0)
    return lab


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory):
    lab = _lab(tmp_path_factory, [])
    yield lab
    lab.down()


@pytest.fixture(params=[False, True], ids=["no-L", "with-L"])
def installer_lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """The lab, its shims with teamd's -L (`--warmboot-dir`) or without."""
    warm_dir = tmp_path_factory.mktemp("warmboot")
    extra = ["--warmboot-dir", str(warm_dir)] if request.param else []
    lab = _lab(tmp_path_factory, extra)
    yield lab, extra, warm_dir if request.param else None
    lab.down()


def test_sonic_installer_upgrade_docker_warm_sequence_completes(
    installer_lab: tuple[Lab, list[str], Path | None],
) -> None:
    lab, extra, warm_dir = installer_lab
    r = lab.redis(6)
    # a cold start of the service wrote SONiC's rows: restore_count 0, no state, no own row
    assert r.hget("WARM_RESTART_TABLE|teammgrd", "restore_count") == "0"
    assert r.hget("WARM_RESTART_TABLE|teamsyncd", "restore_count") == "0"
    assert sorted(r.keys("WARM_RESTART_TABLE|*")) == [
        "WARM_RESTART_TABLE|teammgrd",
        "WARM_RESTART_TABLE|teamsyncd",
    ]
    offset = lab.ovs.log_offset()
    t0 = time.time()
    r.hset("WARM_RESTART_ENABLE_TABLE|teamd", "enable", "true")  # config warm_restart enable
    (old,) = lab.registered_shims().values()
    os.kill(old.pid, signal.SIGUSR1)  # docker exec teamd pkill -USR1 teamd
    r.hdel("WARM_RESTART_TABLE|teamsyncd", "state")
    time.sleep(0.2)
    os.kill(old.pid, signal.SIGKILL)  # docker kill teamd
    assert old._wait_gone(2.0)
    lab.state["shims"].pop("active", None)
    if warm_dir is not None:
        assert (warm_dir / "PortChannel0001").exists(), "SIGUSR1 saved nothing"
    lab.start_shim(shim_command(lab, extra=extra))  # systemctl restart teamd: a new container
    started = time.monotonic()
    wait_for(
        lambda: r.hget("WARM_RESTART_TABLE|teamsyncd", "state") == "reconciled",
        SONIC_INSTALLER_LIMIT_S,
        "teamsyncd reconciled (what sonic-installer waits for)",
        interval=0.2,
    )
    took = time.monotonic() - started
    assert r.hget("WARM_RESTART_TABLE|teamsyncd", "restore_count") == "1"
    assert r.hget("WARM_RESTART_TABLE|teammgrd", "restore_count") == "1"
    assert sorted(r.keys("WARM_RESTART_TABLE|*")) == [
        "WARM_RESTART_TABLE|teammgrd",
        "WARM_RESTART_TABLE|teamsyncd",
    ]
    wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 15.0, "bonds negotiated again")
    gaps = max_gaps(lab, t0, time.time())
    flaps = len(lab.ovs.member_events(offset))
    if warm_dir is not None:
        assert not list(warm_dir.iterdir()), "the warm start left its files"
    print(
        f"\nsonic-installer sequence ({'with' if warm_dir else 'without'} warm-boot files): "
        f"reconciled {took:.2f} s after the start; largest PDU gap {max(gaps.values()):.2f} s, "
        f"{flaps} partner member events (not hitless by design)"
    )


def _orchagent_view(lab: Lab) -> None:
    """Consume the producer tables as orchagent does, so APPL_DB holds the consumed hashes."""
    from swsscommon.swsscommon import ConsumerStateTable, DBConnector

    db = DBConnector.from_url("APPL_DB", lab.redis_url)
    for t in ("LAG_TABLE", "LAG_MEMBER_TABLE"):
        ConsumerStateTable(db, t).pops()


def test_a_start_sweeps_what_a_killed_shim_left_for_a_lag_removed_meanwhile(lab: Lab) -> None:
    """teammgrd clears LAG_TABLE when it starts; a SIGKILLed shim cleans nothing. Started again
    (cold) after a LAG left CONFIG_DB meanwhile, the shim drops that LAG's STATE_DB and APPL_DB
    keys and a refusal nobody holds, and keeps everything of the LAG that is still configured."""
    gone, kept = lab.lags()[1], lab.lags()[0]
    state, appl, cfg = lab.redis(6), lab.redis(0), lab.redis(4)
    _orchagent_view(lab)
    assert appl.exists(f"LAG_TABLE:{gone}") and state.exists(f"LAG_TABLE|{gone}")
    (old,) = lab.registered_shims().values()
    os.kill(old.pid, signal.SIGKILL)
    assert old._wait_gone(2.0)
    lab.state["shims"].pop("active", None)
    for lag, port, _ in lab.members():
        if lag == gone:
            cfg.delete(f"PORTCHANNEL_MEMBER|{lag}|{port}")
    cfg.delete(f"PORTCHANNEL|{gone}")
    state.hset("TEAMD_CONFIG_ERROR_TABLE|PORTCHANNEL|PortChannel0077", "error", "left over")
    lab.start_shim(shim_command(lab))

    def swept() -> bool:
        _orchagent_view(lab)
        return not (
            state.keys(f"LAG_TABLE|{gone}")
            + state.keys(f"LAG_MEMBER_TABLE|{gone}|*")
            + appl.keys(f"LAG_TABLE:{gone}")
            + appl.keys(f"LAG_MEMBER_TABLE:{gone}:*")
            + state.keys("TEAMD_CONFIG_ERROR_TABLE|*")
        )

    wait_for(swept, 10.0, f"{gone}'s keys and the stale refusal gone", interval=0.2)
    assert state.hget(f"LAG_TABLE|{kept}", "oper_status") == "up"
    assert appl.hget(f"LAG_TABLE:{kept}", "oper_status") == "up"
    assert len(state.keys(f"LAG_MEMBER_TABLE|{kept}|*")) == 2
