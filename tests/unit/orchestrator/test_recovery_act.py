"""`Controller.recover` end to end over fakes: what load reads (and does not), and the writes
act makes for each plan, in order. No Redis, no shims: the journal, the owner store, the
runtime and the control requests are stand-ins that record their calls."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import orchestrator.handover as handover
import orchestrator.stages as stages
from teamd_shim.db.sonic_db import Endpoint

RUN_ID = "20250101T000000-4000"
HOLDER = {
    "run_id": RUN_ID,
    "pid": "4000",
    "starttime": "77",
    "host": "dut",
    "since": "2025-01-01T00:00:00",
}


def run_record(result: str, stage: str) -> dict[str, str]:
    return {
        "old": "teamd",
        "old_pid": "100",
        "old_handle": "100",
        "runtime": "process",
        "new": "teamd~2",
        "new_ctl": "/run/teamd~2.sock",
        "new_handle": "4242",
        "result": result,
        "stage": stage,
    }


class FakeJournal:
    def __init__(
        self, calls: list[tuple[Any, ...]], holder: dict[str, str], run: dict[str, str]
    ) -> None:
        self.calls, self.holder, self.record = calls, holder, run

    def lock_holder(self) -> dict[str, str]:
        return dict(self.holder)

    def last_run_id(self) -> str | None:
        return RUN_ID if self.record else None

    def run(self, run_id: str) -> dict[str, str]:
        return dict(self.record)

    def finish(self, run_id: str, result: str, reason: str = "") -> None:
        self.calls.append(("finish", run_id, result, reason))

    def break_lock(self, run_id: str) -> None:
        self.calls.append(("break_lock", run_id))


@dataclass
class Owner:
    owner: str


class FakeStore:
    def __init__(
        self, calls: list[tuple[Any, ...]], owner: str | None, records: dict[str, dict[str, str]]
    ) -> None:
        self.calls, self._owner, self.records = calls, owner, records

    def owner(self) -> Owner | None:
        self.calls.append(("owner",))
        return Owner(self._owner) if self._owner else None

    def instance(self, name: str) -> dict[str, str]:
        return dict(self.records.get(name, {}))

    def drop_instance(self, name: str) -> None:
        self.calls.append(("drop_instance", name))


class FakeRuntime:
    name = "process"

    def __init__(self, calls: list[tuple[Any, ...]], alive: set[str]) -> None:
        self.calls, self.up = calls, alive

    def alive(self, handle: str) -> bool:
        return handle in self.up

    def kill(self, handle: str, timeout: float = 2.0) -> None:
        self.calls.append(("kill", handle))
        self.up.discard(handle)

    def locate(self, inst: Any) -> Any:
        return inst

    def committed(self, old: Any, new_handle: str) -> None:
        self.calls.append(("committed", old.name, new_handle))

    def rolled_back(self, old: Any, new_handle: str | None, run: dict[str, str]) -> None:
        self.calls.append(("rolled_back", old.name, new_handle, run["stage"]))


@dataclass
class Info:
    role: str
    confirmed: bool = True


def controller(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    holder: dict[str, str],
    holder_alive: bool,
    run: dict[str, str],
    owner: str | None,
    alive: set[str],
    roles: dict[str, str],
) -> tuple[handover.Controller, list[tuple[Any, ...]], list[str]]:
    calls: list[tuple[Any, ...]] = []
    lines: list[str] = []
    rt = FakeRuntime(calls, alive)

    def ctl(path: str, cmd: str, **kw: Any) -> dict[str, Any]:
        calls.append(("ctl", path, cmd, *sorted(kw.items())))
        if cmd == "retire":
            rt.up.discard("100")
        return {}

    def info(path: str, timeout: float = 2.0) -> Info:
        calls.append(("info", path))
        return Info(roles[path])

    monkeypatch.setattr(handover, "holder_alive", lambda h: holder_alive)
    monkeypatch.setattr(handover, "ctl", ctl)
    monkeypatch.setattr(handover, "info", info)
    monkeypatch.setattr(stages, "ctl", ctl)
    c = handover.Controller(
        Endpoint(unix_path=str(tmp_path / "none.sock")), runtime=rt, progress=lines.append
    )  # type: ignore[arg-type]
    records = {
        "teamd": {"pid": "100", "ctl": "/run/teamd.sock", "role": "yielded"},
        "teamd~2": {"pid": "4242", "ctl": "/run/teamd~2.sock"},
    }
    c.journal = FakeJournal(calls, holder, run)  # type: ignore[assignment]
    c.store = FakeStore(calls, owner, records)  # type: ignore[assignment]
    return c, calls, lines


def test_a_run_that_took_over_is_completed_and_the_dead_holders_lock_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, calls, _ = controller(
        tmp_path,
        monkeypatch,
        holder=HOLDER,
        holder_alive=False,
        run=run_record("running", "replayed"),
        owner="teamd~2",
        alive={"100", "4242"},
        roles={"/run/teamd~2.sock": "active"},
    )
    out = c.recover()
    assert (out.code, out.result, out.run_id, out.old, out.new) == (
        0,
        "completed",
        RUN_ID,
        "teamd",
        "teamd~2",
    )
    assert out.reason == "teamd~2 had taken over; teamd retired"
    assert calls == [
        ("owner",),
        ("info", "/run/teamd~2.sock"),  # the confirmation wait
        ("ctl", "/run/teamd.sock", "retire"),
        ("drop_instance", "teamd"),
        ("committed", "teamd", "4242"),
        ("finish", RUN_ID, "completed", "recovered: teamd~2 had taken over; teamd retired"),
        ("break_lock", RUN_ID),
    ]


def test_a_run_that_did_not_take_over_is_rolled_back_and_the_old_owner_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, calls, _ = controller(
        tmp_path,
        monkeypatch,
        holder={},
        holder_alive=False,
        run=run_record("running", "yielded"),
        owner="teamd",
        alive={"100", "4242"},
        roles={"/run/teamd~2.sock": "standby", "/run/teamd.sock": "yielded"},
    )
    out = c.recover()
    assert (out.code, out.result) == (1, "rolled_back")
    assert out.reason == "teamd kept the LAGs; standby removed"
    assert calls == [
        ("owner",),
        ("info", "/run/teamd~2.sock"),  # the owner record does not name it: ask it
        ("kill", "4242"),
        ("drop_instance", "teamd~2"),
        ("rolled_back", "teamd", "4242", "yielded"),
        ("info", "/run/teamd.sock"),
        ("ctl", "/run/teamd.sock", "resume", ("force", True)),
        ("finish", RUN_ID, "rolled_back", "recovered: teamd kept the LAGs; standby removed"),
    ]


@pytest.mark.parametrize(
    ("holder", "holder_alive", "run", "only_if_stale"),
    [
        ({}, False, run_record("completed", "replayed"), False),
        ({}, False, {}, False),
        (HOLDER, True, run_record("running", "yielded"), True),
    ],
)
def test_nothing_to_recover_reads_no_instance_and_writes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    holder: dict[str, str],
    holder_alive: bool,
    run: dict[str, str],
    only_if_stale: bool,
) -> None:
    c, calls, lines = controller(
        tmp_path,
        monkeypatch,
        holder=holder,
        holder_alive=holder_alive,
        run=run,
        owner="teamd",
        alive={"100"},
        roles={},
    )
    out = c.recover(only_if_stale=only_if_stale)
    assert (
        out.to_json()
        == handover.Outcome(code=0, result="nothing", reason="no interrupted run").to_json()
    )
    assert calls == [] and lines == []


def test_a_live_holder_is_refused_with_its_lock_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, calls, lines = controller(
        tmp_path,
        monkeypatch,
        holder=HOLDER,
        holder_alive=True,
        run=run_record("running", "yielded"),
        owner="teamd",
        alive={"100"},
        roles={},
    )
    out = c.recover()
    assert (out.code, out.result) == (2, "refused")
    assert out.reason.startswith(f"another warm restart is running: run {RUN_ID} by pid 4000")
    assert calls == []
    assert lines == [f"      refused: {out.reason}", "      nothing was changed"]


def test_retire_waits_for_a_retired_owner_but_recovery_kills_one_that_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestrator.runtime.base import Instance
    from teamd_shim.control.transport import ControlError

    def unanswered(path: str, cmd: str, **kw: Any) -> None:
        raise ControlError("timed out")

    monkeypatch.setattr(stages, "RETIRE_DEADLINE_S", 0.05)
    monkeypatch.setattr(stages, "ctl", unanswered)
    old = Instance("teamd", 100, "", "", [], "", "", "active", "/run/teamd.sock", handle="100")
    for wait, slept in ((True, True), (False, False)):
        calls: list[tuple[Any, ...]] = []
        rt = FakeRuntime(calls, {"100"})
        naps: list[float] = []
        monkeypatch.setattr(time, "sleep", naps.append)
        stages.retire(rt, old, wait_if_unanswered=wait)  # type: ignore[arg-type]
        assert calls == [("kill", "100")]
        assert bool(naps) is slept
