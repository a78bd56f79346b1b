"""`sonic-installer upgrade-docker teamd --warm`'s sequence, played against the shim as SONiC's
tool plays it against stock teamd (sonic-utilities `sonic_installer/main.py`, hld §6.1).

Enable warm restart for teamd, `pkill -USR1` the LAG daemon, HDEL teamsyncd's `state`, kill the
container (here: SIGKILL the process), start it again (a cold start of the shim), then wait for
`WARM_RESTART_TABLE|teamsyncd` `state == reconciled` (the tool gives up after about 180 s).
The sequence must complete, with the rows SONiC's `show warm_restart state` expects. Its cost at
the partner is printed, not asserted: this is SONiC's own, non-hitless path (README "Run it on a
SONiC switch"); `warm-restart teamd` is the hitless one.
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


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory):
    lab = Lab(Path(tmp_path_factory.mktemp("si")), prefix="si")
    lab.up(2, 2, shim_cmd=shim_command(lab), recorder=True)
    wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 15.0, "all bonds negotiated")
    time.sleep(1.0)
    yield lab
    lab.down()


def test_sonic_installer_upgrade_docker_warm_sequence_completes(lab: Lab) -> None:
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
    lab.start_shim(shim_command(lab))  # systemctl restart teamd: a cold start of the container
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
    print(
        f"\nsonic-installer sequence: reconciled {took:.2f} s after the start; largest PDU gap "
        f"{max(gaps.values()):.2f} s, {flaps} partner member events (not hitless by design)"
    )
