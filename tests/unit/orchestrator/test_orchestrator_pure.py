import json

from orchestrator.handover import gaps
from orchestrator.runtime.process import standby_argv
from teamd_shim.db.sonic_db import RedisUrlError, parse_url


def test_standby_argv_keeps_options_and_replaces_role_and_name():
    active = [
        "/usr/bin/teamd-shim",
        "--redis",
        "unix:///r.sock",
        "--role",
        "active",
        "--name=teamd",
        "--ctl-dir",
        "/run/x",
        "--record",
        "/tmp/r.jsonl",
    ]
    argv = standby_argv(active, "teamd~2", None)
    assert argv == [
        "/usr/bin/teamd-shim",
        "--redis",
        "unix:///r.sock",
        "--ctl-dir",
        "/run/x",
        "--record",
        "/tmp/r.jsonl",
        "--role",
        "standby",
        "--name",
        "teamd~2",
    ]


def test_standby_argv_with_exec_replaces_only_the_executable():
    argv = standby_argv(["/old/teamd-shim", "--name", "teamd"], "teamd~5", "/new/teamd-shim")
    assert argv == ["/new/teamd-shim", "--role", "standby", "--name", "teamd~5"]


def test_gaps_are_first_new_tx_minus_last_old_tx_per_port():
    from teamd_shim.model.contract import HandedFrom, InstanceInfo

    info = InstanceInfo(
        name="teamd~2",
        role="active",
        epoch=2,
        pid=1,
        pidns="",
        ready=True,
        ready_detail="",
        final_written=False,
        yielded_at=None,
        takeover_at=1.0,
        takeover_error="",
        confirmed=True,
        first_tx={"Ethernet0": 11.0, "Ethernet4": 11.25},
        handed_from=HandedFrom(
            "teamd", 1, 9.0, {"Ethernet0": 10.0, "Ethernet4": 10.2, "Ethernet8": None}
        ),
        lags=("PortChannel0001", "PortChannel0002"),
        ports_by_lag={
            "PortChannel0001": ("Ethernet0", "Ethernet4"),
            "PortChannel0002": ("Ethernet8",),
        },
    )
    assert InstanceInfo.from_json(info.to_json()) == info  # the wire round trip
    g = gaps(info)
    assert abs(g["PortChannel0001"]["max_gap_s"] - 1.05) < 1e-9
    assert g["PortChannel0002"]["max_gap_s"] is None  # no PDU on a down link: no gap claimed


def test_redis_url_forms():
    assert parse_url("unix:///run/redis/redis.sock").unix_path == "/run/redis/redis.sock"
    ep = parse_url("redis://10.1.2.3:6380")
    assert (ep.host, ep.port) == ("10.1.2.3", 6380)
    for bad in ("http://x", "unix://", "redis://h:notaport"):
        try:
            parse_url(bad)
        except RedisUrlError as e:
            assert bad in str(e)
        else:
            raise AssertionError(bad)


def test_poll_until_does_not_overrun_its_deadline_on_a_shim_that_never_answers(tmp_path):
    """A SIGSTOPped shim accepts the connection (the kernel queues it) and never replies."""
    import socket
    import time

    import pytest

    from orchestrator.handover import CHECK_FLOOR_S, Deadline, ctl, poll_until

    path = str(tmp_path / "stopped.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    calls: list[tuple[float, float]] = []

    def confirmed(left: float) -> bool:
        calls.append((time.monotonic(), left))
        return bool(ctl(path, "info", timeout=min(0.5, left))["confirmed"])

    deadline = time.monotonic() + 0.1
    with pytest.raises(Deadline):
        poll_until("first PDUs", deadline, confirmed)
    overrun = time.monotonic() - deadline
    srv.close()
    # a fixed 0.5 s request timeout would overrun by 0.4 s
    assert overrun < 0.2, overrun
    assert calls
    # every request was bounded by what was left, so none could run past the deadline
    assert all(t + left <= deadline + CHECK_FLOOR_S + 1e-6 for t, left in calls), calls


def test_a_rollback_that_cannot_kill_the_standby_never_resumes_the_old_owner(monkeypatch, tmp_path):
    """Fail closed: two owners must never both write; the old one stays yielded (its periodic
    PDUs continue) and the outcome says what to do."""
    import orchestrator.handover as handover
    from orchestrator.runtime.base import Instance
    from teamd_shim.db.sonic_db import Endpoint

    calls: list[str] = []
    monkeypatch.setattr(handover, "ctl", lambda path, cmd, **kw: calls.append(cmd))

    class Unkillable:
        name = "process"

        def alive(self, handle: str) -> bool:
            return True

        def kill(self, handle: str, timeout: float = 2.0) -> None:
            calls.append("kill")

        def rolled_back(self, old: object, new: object, run: object) -> None:
            calls.append("rolled_back")

    c = handover.Controller(Endpoint(unix_path=str(tmp_path / "none.sock")), runtime=Unkillable())  # type: ignore[arg-type]
    old = Instance("teamd", 1, "", "", [], "", "", "yielded", str(tmp_path / "old.sock"))
    out = handover.Outcome(code=1, result="rolled_back", reason="standby not READY")
    assert c._rolled_back(out, old, "4242", True, "teamd~2", {}) is False
    assert calls == ["kill"], calls  # no runtime undo, and above all no `resume`
    assert out.result == "rollback_incomplete"
    assert "warm-restart recover" in out.reason and "teamd~2" in out.reason


def test_an_info_reply_of_another_shape_names_the_missing_field():
    import pytest

    from teamd_shim.model.contract import ContractError, InstanceInfo

    with pytest.raises(ContractError, match="lacks field 'confirmed'"):
        InstanceInfo.from_json(
            {
                "name": "x",
                "role": "active",
                "epoch": 1,
                "pid": 1,
                "ready": True,
                "ready_detail": "",
                "final_written": False,
                "yielded_at": None,
                "takeover_at": None,
                "takeover_error": "",
                "handed_from": {},
            }
        )


class _Step:
    """A stand-in stage: the engine of Controller.restart, not the stages, is under test."""

    def __init__(self, name: str, fail: Exception | None = None) -> None:
        self.name, self.fail = name, fail

    def title(self, c: object, run: object) -> str:
        return f"do {self.name}"

    def run(self, c: object, run: object) -> str:
        if self.fail is not None:
            raise self.fail
        return f"{self.name} done"


def _controller(tmp_path, lines: list[str]):
    from orchestrator.handover import Controller
    from teamd_shim.db.sonic_db import Endpoint

    return Controller(Endpoint(unix_path=str(tmp_path / "none.sock")), progress=lines.append)


def test_restart_numbers_and_times_its_stages_from_the_stage_list(tmp_path):
    from orchestrator.handover import STAGES

    assert [s.name for s in STAGES] == [
        "precheck",
        "standby",
        "ready",
        "yield",
        "takeover",
        "retire",
        "commit",
    ]
    lines: list[str] = []
    c = _controller(tmp_path, lines)
    c.stages = (_Step("one"), _Step("two"), _Step("three"))
    out = c.restart()
    assert out.result == "completed" and out.code == 0
    assert list(out.stages) == ["one", "two", "three"]
    assert list(out.to_json()["stages"]) == ["one", "two", "three"]
    assert [x for x in lines if x.startswith("[")] == [
        "[1/3] do one",
        "[2/3] do two",
        "[3/3] do three",
    ]
    assert lines[1].startswith("      ok (") and lines[1].endswith(" - one done")


def test_a_stage_failing_before_the_lock_is_a_refusal_naming_why(tmp_path):
    import redis

    from orchestrator.handover import REFUSED, Refused

    for fail, why in (
        (Refused("no teamd-shim owns the LAGs"), "no teamd-shim owns the LAGs"),
        (redis.exceptions.ConnectionError("down"), "redis unreachable at"),
    ):
        lines: list[str] = []
        c = _controller(tmp_path, lines)
        c.stages = (_Step("one", fail), _Step("two"))
        out = c.restart()
        assert out.result == "refused" and out.code == REFUSED and why in out.reason
        assert "two" not in out.stages and "      nothing was changed" in lines


def test_a_snapshot_meta_round_trips_and_a_foreign_one_names_what_is_wrong():
    import pytest

    from teamd_shim.model.contract import ContractError, SnapshotMeta

    meta = SnapshotMeta(epoch=4, t=12.5, final=True, owner="teamd", rx_cut={"Ethernet0": 17})
    assert SnapshotMeta.from_json(json.loads(json.dumps(meta.to_json()))) == meta
    older = {"epoch": 4, "t": 12.5, "final": True, "owner": "teamd"}  # no replay cut yet
    assert SnapshotMeta.from_json(older).rx_cut == {}
    with pytest.raises(ContractError, match="lacks field 'final'"):
        SnapshotMeta.from_json({"epoch": 4, "t": 1.0, "owner": "teamd"})
    with pytest.raises(ContractError, match="malformed"):
        SnapshotMeta.from_json({**older, "rx_cut": {"Ethernet0": "soon"}})
