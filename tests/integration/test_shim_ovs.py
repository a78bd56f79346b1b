"""teamd-shim against an independent partner: Open vSwitch, userspace datapath, LACP fast.

Real redis-server, real namespaces and veths, real OVS. One lab (4 LAGs x 2 members) for the
module; tests run in file order, the disruptive ones last.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from helpers.lab_helpers import all_negotiated, wait_for

from swsscommon.swsscommon import ConsumerStateTable, DBConnector
from teamd_lab.lab import Lab
from teamd_lab.record_analysis import inter_arrivals, load_records
from teamd_lab.shim import shim_command, shim_executable

pytestmark = pytest.mark.integration

LAGS, MEMBERS = 4, 2
PARTNER_SYSTEM = "02:00:00:00:00:bb"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    workdir = Path(tmp_path_factory.mktemp("shim"))
    lab = Lab(workdir, prefix="it")
    lab.up(LAGS, MEMBERS, shim_cmd=None, recorder=True)
    lab.t_start = time.monotonic()
    lab.start_shim(shim_command(lab))
    wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 15.0, "all bonds negotiated")
    lab.t_negotiated = time.monotonic()
    time.sleep(0.5)  # let the initial exchange finish before tests take baselines
    yield lab
    log = workdir / "shim-teamd.log"
    if not log.exists():
        log = workdir / "shim-active.log"
    print(log.read_text()[-4000:] if log.exists() else "no shim log")
    lab.down()


def stats_snapshot(lab: Lab) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        (bond, m): (s["link_expired"], s["link_defaulted"])
        for bond, members in lab.ovs.lacp_stats().items()
        for m, s in members.items()
    }


def appl_db(lab: Lab) -> dict[str, dict[str, str]]:
    """Consume the producer tables as orchagent would, then read the resulting hashes."""
    db = DBConnector.from_url("APPL_DB", lab.redis_url)
    for t in ("LAG_TABLE", "LAG_MEMBER_TABLE"):
        ConsumerStateTable(db, t).pops()
    r = lab.redis(0)
    return {k: r.hgetall(k) for k in r.keys("LAG_*TABLE:*")}


def state_db(lab: Lab, key: str) -> dict[str, str]:
    return lab.redis(6).hgetall(key)


def test_negotiates_within_5s(lab: Lab) -> None:
    elapsed = lab.t_negotiated - lab.t_start
    assert elapsed < 5.0
    show = lab.ovs.bond_show()
    assert len(show) == LAGS
    for bond in show.values():
        assert len(bond["members"]) == MEMBERS and all(bond["members"].values())


def test_state_db_and_appl_db_hold_the_right_values(lab: Lab) -> None:
    def settled() -> bool:
        return all(
            state_db(lab, f"LAG_MEMBER_TABLE|{lag}|{port}").get("runner.state") == "current"
            for lag, port, _ in lab.members()
        )

    wait_for(settled, 3.0, "STATE_DB members current")
    for lag in lab.lags():
        st = state_db(lab, f"LAG_TABLE|{lag}")
        assert st["oper_status"] == "up" and st["admin_status"] == "up" and st["state"] == "ok"
        assert st["runner.fast_rate"] == "true" and st["runner.active"] == "true"
        assert st["setup.kernel_team_mode_name"] == "loadbalance"
        assert st["mtu"] == "9100"
    for lag, port, _ in lab.members():
        m = state_db(lab, f"LAG_MEMBER_TABLE|{lag}|{port}")
        assert m["runner.selected"] == "true" and m["runner.aggregator.selected"] == "true"
        assert m["runner.actor_lacpdu_info.state"] == "63"
        assert m["runner.partner_lacpdu_info.state"] == "63"
        assert m["runner.partner_lacpdu_info.system"] == PARTNER_SYSTEM
        assert m["runner.actor_lacpdu_info.port"] == str(int(port.removeprefix("Ethernet")) + 1)
        assert m["link.up"] == "true"
    appl = appl_db(lab)
    for lag in lab.lags():
        assert appl[f"LAG_TABLE:{lag}"] == {
            "admin_status": "up",
            "oper_status": "up",
            "mtu": "9100",
        }
    for lag, port, _ in lab.members():
        assert appl[f"LAG_MEMBER_TABLE:{lag}:{port}"] == {"status": "enabled"}


def test_ctl_state_dump_is_teamdctl_shaped(lab: Lab) -> None:
    lag, port, _ = lab.members()[0]
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            lab.dut_ns,
            shim_executable(),
            "--ctl-dir",
            str(lab.workdir / "ctl"),
            "ctl",
            lag,
            "state",
            "dump",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    dump = json.loads(out)
    assert dump["setup"]["runner_name"] == "lacp"
    assert dump["runner"]["fast_rate"] is True
    p = dump["ports"][port]["runner"]
    assert p["state"] == "current" and p["selected"] is True
    assert set(p["partner_lacpdu_info"]) == {
        "system_priority",
        "system",
        "key",
        "port_priority",
        "port",
        "state",
    }
    bad = subprocess.run(
        [
            shim_executable(),
            "--ctl-dir",
            str(lab.workdir / "ctl"),
            "ctl",
            "PortChannel9999",
            "state",
            "dump",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "no LAG 'PortChannel9999'" in bad.stderr


def test_a_second_shim_of_the_same_name_exits_and_the_partner_sees_nothing(lab: Lab) -> None:
    """Seen on main before the fix: the second one unlinked the live control socket, claimed a
    new epoch, and OVS disabled every member once; the first could no longer be managed. One
    of another name was already refused by the claim (a live owner holds the epoch); pinned
    here too."""
    before, offset = stats_snapshot(lab), lab.ovs.log_offset()
    argv = ["ip", "netns", "exec", lab.dut_ns, *lab.shim_argv(shim_command(lab))]
    second = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert second.returncode == 2, second.stderr[-2000:]
    assert "already answers" in second.stderr and "nothing was changed" in second.stderr
    # another name, as an active, and as a standby no warm-restart run is waiting for (which
    # starts as the active): the live owner is named, nothing is started
    for extra in ([], ["--role", "standby"]):
        cmd = shim_command(lab, name="teamd_other", extra=extra)
        other = subprocess.run(
            ["ip", "netns", "exec", lab.dut_ns, *lab.shim_argv(cmd)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert other.returncode == 2, other.stderr[-2000:]
        assert "another active teamd-shim ('teamd'" in other.stderr, other.stderr[-2000:]
        assert "Nothing was started" in other.stderr
    assert lab.redis(6).hget("TEAMD_OWNER_TABLE|teamd", "owner") == "teamd"
    assert not lab.redis(6).exists("TEAMD_SHIM_INSTANCE|teamd_other")
    time.sleep(3.5)  # longer than the fast-mode timeout: a flap would be in the OVS log
    assert lab.ovs.member_events(offset) == []
    assert stats_snapshot(lab) == before
    assert all_negotiated(lab.ovs.bond_show())
    lag = lab.members()[0][0]
    ctl = subprocess.run(
        ["ip", "netns", "exec", lab.dut_ns, shim_executable(), "--ctl-dir",
         str(lab.workdir / "ctl"), "ctl", lag, "state", "dump"],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert ctl.returncode == 0, ctl.stderr  # the first still answers


NOBODY_CLIENT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(json.dumps({"connect": e.strerror}))
    sys.exit(0)
try:
    s.sendall((sys.argv[2] + "\\n").encode())
except BrokenPipeError:
    pass  # refused before the request was read: the refusal is still there to read
print(s.makefile().readline().strip())
"""


def as_nobody(path: str, req: dict[str, object]) -> str:
    """What `teamd-shim ctl` sends, sent by uid nobody. Debian's own python3 with no
    site-packages: the venv's interpreter here lives under /root, which nobody cannot read."""
    p = subprocess.run(
        ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
         "/usr/bin/python3", "-I", "-c", NOBODY_CLIENT, path, json.dumps(req)],
        capture_output=True, text=True, timeout=15,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_the_control_socket_answers_root_only_and_bounds_every_argument(lab: Lab) -> None:
    """The filesystem refuses nobody; where a mount or a chmod has opened the path, the shim
    refuses it by SO_PEERCRED before reading a byte; root's out-of-range values are refused.
    Seen on main before the fix: nobody got `ok` for the retry count (the socket was 0660 in a
    0750 directory, so only an opened path was needed)."""
    from teamd_shim.control.transport import ControlError, request

    lag = lab.members()[0][0]
    sock = str(lab.workdir / "ctl" / "teamd.sock")
    assert Path(sock).exists(), sorted(p.name for p in (lab.workdir / "ctl").iterdir())
    setter = {"cmd": "state_item_set", "lag": lag, "path": "runner.retry_count", "value": "5"}
    assert "Permission denied" in as_nobody(sock, setter)
    before, offset = stats_snapshot(lab), lab.ovs.log_offset()
    opened = Path(tempfile.mkdtemp(prefix="teamd-shim-open-"))
    mode = os.stat(sock).st_mode & 0o777
    try:
        opened.chmod(0o777)
        os.link(sock, opened / "teamd.sock")  # the same socket, on a path nobody can reach
        os.chmod(sock, 0o666)
        for req in (setter, {"cmd": "yield"}, {"cmd": "shadow", "seconds": 5}):
            reply = json.loads(as_nobody(str(opened / "teamd.sock"), req))
            assert reply["ok"] is False and "refused: uid 65534" in reply["error"], reply
    finally:
        os.chmod(sock, mode)
        shutil.rmtree(opened)
    assert mode == 0o600
    for bad in (
        {"cmd": "shadow", "seconds": "inf"},
        {"cmd": "shadow", "seconds": -1},
        {"cmd": "state_item_set", "lag": lag, "path": "runner.retry_count", "value": "256"},
        {"cmd": "state_item_set", "lag": lag, "path": "runner.retry_count", "value": "nan"},
        {"cmd": "state_item_set", "lag": lag, "path": "runner.no_such_item", "value": "1"},
    ):
        with pytest.raises(ControlError):
            request(sock, bad)
    assert request(sock, {"cmd": "state_item_get", "lag": lag, "path": "runner.retry_count"}) == 3
    assert request(sock, {"cmd": "info"})["role"] == "active"
    assert lab.ovs.member_events(offset) == [] and stats_snapshot(lab) == before


def test_pdu_interarrival_is_one_second_over_30s(lab: Lab) -> None:
    """Our periodic PDUs at the partner: 1.0 s +- 0.05 s, measured over 30 s on every port."""
    start = lab.t_start + 3.0  # after the negotiation burst (event-driven sends)
    end = start + 30.0
    time.sleep(max(0.0, end + 0.2 - time.monotonic()))
    frames = [f for f in load_records(lab.state["recorder"]["out"]) if start <= f.t <= end]
    gaps = inter_arrivals(frames, subtype=1)
    assert len(gaps) == LAGS * MEMBERS
    for iface, g in gaps.items():
        assert len(g) >= 28, (iface, len(g))
        assert max(g) <= 1.05 and min(g) >= 0.95, (iface, min(g), max(g))


def test_member_link_down_deselects_on_both_sides_and_rejoins(lab: Lab) -> None:
    lag, port, pport = lab.members()[0]
    other = [p for lg, _, p in lab.members() if lg == lag and p != pport][0]
    bond = lab.state["lags"][lag]["bond"]
    lab.set_member_link(port, False)
    try:
        wait_for(
            lambda: not lab.ovs.bond_show()[bond]["members"][pport],
            3.0,
            "partner disables the member",
        )
        wait_for(
            lambda: (
                state_db(lab, f"LAG_MEMBER_TABLE|{lag}|{port}").get("runner.selected") == "false"
            ),
            3.0,
            "our side deselects the member",
        )
        appl = appl_db(lab)
        assert appl[f"LAG_MEMBER_TABLE:{lag}:{port}"] == {"status": "disabled"}
        assert appl[f"LAG_TABLE:{lag}"]["oper_status"] == "up"  # min_links 1: LAG stays up
        assert lab.ovs.bond_show()[bond]["members"][other] is True
    finally:
        lab.set_member_link(port, True)
    wait_for(lambda: lab.ovs.bond_show()[bond]["members"][pport], 5.0, "partner re-enables")
    wait_for(
        lambda: appl_db(lab)[f"LAG_MEMBER_TABLE:{lag}:{port}"] == {"status": "enabled"},
        5.0,
        "our side re-enables",
    )


def test_runtime_add_and_remove_of_lag_and_member(lab: Lab) -> None:
    new = lab.add_lag(members=2)
    bond = lab.state["lags"][new]["bond"]
    wait_for(
        lambda: all_negotiated({bond: lab.ovs.bond_show().get(bond, {})}), 5.0, f"{new} negotiated"
    )
    lag = lab.lags()[0]
    _, port, pport = lab.add_member(lag)
    b1 = lab.state["lags"][lag]["bond"]
    wait_for(lambda: lab.ovs.bond_show()[b1]["members"].get(pport), 5.0, "new member enabled")
    wait_for(
        lambda: appl_db(lab).get(f"LAG_MEMBER_TABLE:{lag}:{port}") == {"status": "enabled"},
        3.0,
        "new member in APPL_DB",
    )
    lab.remove_member(port)
    wait_for(
        lambda: f"LAG_MEMBER_TABLE:{lag}:{port}" not in appl_db(lab),
        3.0,
        "member gone from APPL_DB",
    )
    # the netdev may vanish before the shim sees the config removal: for that moment the member
    # is "configured, netdev missing" (an error field), then the key goes
    wait_for(
        lambda: not state_db(lab, f"LAG_MEMBER_TABLE|{lag}|{port}"),
        3.0,
        "member gone from STATE_DB",
    )
    lab.remove_lag(new)
    wait_for(lambda: f"LAG_TABLE:{new}" not in appl_db(lab), 3.0, "LAG gone from APPL_DB")
    wait_for(lambda: not state_db(lab, f"LAG_TABLE|{new}"), 3.0, "LAG gone from STATE_DB")
    assert all_negotiated(lab.ovs.bond_show())


def test_a_planted_epoch_far_ahead_is_put_back_and_appl_db_keeps_being_written(
    lab: Lab,
) -> None:
    """A STATE_DB writer moves the owner record to an epoch no live instance holds. Seen on
    main before the fix: every APPL_DB write of the active was fenced for good (the new LAG
    never reached APPL_DB) while it kept driving the wire."""
    from teamd_shim.db.schema import OWNER_KEY, STATE_DB_ID

    state = lab.redis(STATE_DB_ID)
    ours = state.hgetall(OWNER_KEY)
    assert ours["owner"] == "teamd", ours
    before, offset = stats_snapshot(lab), lab.ovs.log_offset()
    old_ports = {pport for _, _, pport in lab.members()}
    state.hset(OWNER_KEY, mapping={"epoch": "1000000000000000", "owner": "ghost"})
    new = lab.add_lag(members=2)  # its APPL_DB entry is fenced until the record is ours again
    try:
        wait_for(lambda: f"LAG_TABLE:{new}" in appl_db(lab), 8.0, f"{new} in APPL_DB")
        assert state.hgetall(OWNER_KEY)["epoch"] == ours["epoch"]
        assert state.hget(OWNER_KEY, "owner") == "teamd"
        log = Path(lab.state["shims"]["active"]["log"]).read_text()
        assert "was rewritten by someone who is not a live teamd-shim" in log
        assert [e for e in lab.ovs.member_events(offset) if e.member in old_ports] == []
        assert {k: v for k, v in stats_snapshot(lab).items() if k[1] in old_ports} == before
    finally:
        lab.remove_lag(new)
        wait_for(lambda: f"LAG_TABLE:{new}" not in appl_db(lab), 5.0, "LAG gone from APPL_DB")


def test_a_forged_final_snapshot_is_refused_and_the_owner_resumes(lab: Lab) -> None:
    """What `warm-restart teamd` does, step by step over the control sockets, with a STATE_DB
    writer rewriting the yielded owner's final snapshot (another partner on one port) before
    the takeover. Seen on main before the fix: the standby took over and restored the forged
    partner as LACP state."""
    from teamd_shim.control.transport import ControlError, request
    from teamd_shim.db.schema import FINAL_PREFIX, LOCK_KEY, OWNER_KEY, STATE_DB_ID, run_key

    state = lab.redis(STATE_DB_ID)
    ctl = lab.workdir / "ctl"
    # the orchestrator's lock and journal, naming the standby as the run's new instance
    state.hset(LOCK_KEY, mapping={"run_id": "forged-final", "holder": "test"})
    state.hset(run_key("forged-final"), mapping={"new": "teamd_x", "result": "running"})
    lab.start_shim(shim_command(lab, name="teamd_x", extra=["--role", "standby"]), "standby")
    try:
        wait_for(lambda: (ctl / "teamd_x.sock").exists(), 10.0, "standby socket")
        request(str(ctl / "teamd.sock"), {"cmd": "shadow", "seconds": 30})
        wait_for(
            lambda: request(str(ctl / "teamd_x.sock"), {"cmd": "info"})["ready"], 10.0, "READY"
        )
        before, offset = stats_snapshot(lab), lab.ovs.log_offset()
        request(str(ctl / "teamd.sock"), {"cmd": "yield"})
        final = state.hgetall(FINAL_PREFIX + "teamd")
        lag, port, _ = lab.members()[0]
        d = json.loads(final[lag])
        d["ports"][port]["partner"]["system"] = "02:00:00:00:00:66"
        state.hset(FINAL_PREFIX + "teamd", lag, json.dumps(d))
        with pytest.raises(ControlError, match="not one to take over from") as refused:
            request(str(ctl / "teamd_x.sock"), {"cmd": "takeover"})
        request(str(ctl / "teamd.sock"), {"cmd": "resume", "force": True})
        assert f"{lag}/{port}" in str(refused.value), refused.value
        assert state.hget(OWNER_KEY, "owner") == "teamd"
        assert request(str(ctl / "teamd.sock"), {"cmd": "info"})["role"] == "active"
        assert request(str(ctl / "teamd_x.sock"), {"cmd": "info"})["role"] == "standby"
        time.sleep(3.5)  # longer than the fast-mode timeout: a flap would be in the OVS log
        assert lab.ovs.member_events(offset) == []
        assert stats_snapshot(lab) == before
    finally:
        lab.stop_shim("standby")
        state.delete(LOCK_KEY, run_key("forged-final"))
    assert all_negotiated(lab.ovs.bond_show())


def test_bad_config_is_refused_and_touches_nothing_else(lab: Lab) -> None:
    before = stats_snapshot(lab)
    offset = lab.ovs.log_offset()
    cfg = lab.redis(4)
    lag1, lag2 = lab.lags()[0], lab.lags()[1]
    port_of_lag1 = [p for lg, p, _ in lab.members() if lg == lag1][0]
    bad = {
        "PORTCHANNEL|Bogus1": {"admin_status": "up"},
        "PORTCHANNEL|PortChannel0099": {"admin_status": "up", "fast_rate": "maybe"},
        f"PORTCHANNEL_MEMBER|{lag2}|Ethernet999": {"NULL": "NULL"},
        f"PORTCHANNEL_MEMBER|{lag2}|{port_of_lag1}": {"NULL": "NULL"},
    }
    for k, v in bad.items():
        cfg.hset(k, mapping=v)
    err_key = "TEAMD_CONFIG_ERROR_TABLE|"
    try:
        # each refusal in the shim's own table, keyed by the CONFIG_DB key (hld §4)
        for key, words in {
            "PORTCHANNEL|Bogus1": "bad LAG name",
            "PORTCHANNEL|PortChannel0099": "fast_rate",
            f"PORTCHANNEL_MEMBER|{lag2}|Ethernet999": "does not exist",
            f"PORTCHANNEL_MEMBER|{lag2}|{port_of_lag1}": f"already a member of {lag1}",
        }.items():
            wait_for(
                lambda key=key, words=words: words in state_db(lab, err_key + key).get("error", ""),
                3.0,
                f"error on {key}",
            )
        # and no LAG_TABLE / LAG_MEMBER_TABLE key for what does not run: SONiC's managers take
        # the key's existence for "ready", `show interfaces portchannel` indexes its fields
        for key in (
            "LAG_TABLE|Bogus1",
            "LAG_TABLE|PortChannel0099",
            f"LAG_MEMBER_TABLE|{lag2}|Ethernet999",
            f"LAG_MEMBER_TABLE|{lag2}|{port_of_lag1}",
        ):
            assert not state_db(lab, key), key
        assert not lab.redis(0).exists("LAG_TABLE:PortChannel0099", "_LAG_TABLE:PortChannel0099")
        # a bad change to a running LAG is refused and the running config kept
        cfg.hset(f"PORTCHANNEL|{lag1}", "min_links", "zero")
        wait_for(
            lambda: "min_links" in state_db(lab, f"{err_key}PORTCHANNEL|{lag1}").get("error", ""),
            3.0,
            "error on the running LAG",
        )
        assert state_db(lab, f"LAG_TABLE|{lag1}")["oper_status"] == "up"
        assert "error" not in state_db(lab, f"LAG_TABLE|{lag1}")
    finally:
        cfg.delete(*bad)
        cfg.hset(f"PORTCHANNEL|{lag1}", "min_links", "1")
    wait_for(
        lambda: not lab.redis(6).keys(err_key + "*"), 3.0, "refusals cleared with their entries"
    )
    assert not state_db(lab, f"LAG_MEMBER_TABLE|{lag2}|Ethernet999")
    time.sleep(1.0)
    assert stats_snapshot(lab) == before
    assert lab.ovs.member_events(offset) == []
    assert all_negotiated(lab.ovs.bond_show())


def test_redis_restart_is_invisible_to_partner(lab: Lab) -> None:
    before = stats_snapshot(lab)
    offset = lab.ovs.log_offset()
    lab.restart_redis(down_for=2.0)
    wait_for(
        lambda: state_db(lab, f"LAG_TABLE|{lab.lags()[0]}").get("oper_status") == "up",
        10.0,
        "STATE_DB republished after the restart",
    )
    time.sleep(3.5)  # longer than the partner's 3 s timeout
    assert stats_snapshot(lab) == before
    assert lab.ovs.member_events(offset) == []
    assert all_negotiated(lab.ovs.bond_show())
