"""A stage runs over its StageContext alone: no Controller, no Redis, no shim."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import orchestrator.stages as stages
from orchestrator.outcome import Outcome
from orchestrator.runtime.base import Instance

OLD = Instance("teamd", 100, "", "", [], "", "", "active", "/run/teamd.sock", handle="100")


class Runtime:
    name = "process"

    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls, self.up = calls, {"100", "4242"}

    def alive(self, handle: str) -> bool:
        return handle in self.up

    def kill(self, handle: str, timeout: float = 2.0) -> None:
        self.calls.append(("kill", handle))
        self.up.discard(handle)

    def committed(self, old: Instance, new_handle: str) -> None:
        self.calls.append(("committed", old.name, new_handle))


class Host:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def recover(self, only_if_stale: bool = False) -> Outcome:
        raise AssertionError("not for these stages")

    def active(self) -> Instance:
        raise AssertionError("not for these stages")


class Store:
    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls

    def drop_instance(self, name: str) -> None:
        self.calls.append(("drop_instance", name))


class DownJournal:
    def finish(self, *args: Any, **kw: Any) -> None:
        raise redis.exceptions.ConnectionError("Connection refused")


def context(calls: list[tuple[Any, ...]], lines: list[str]) -> stages.StageContext:
    return stages.StageContext(
        journal=DownJournal(),  # type: ignore[arg-type]
        store=Store(calls),  # type: ignore[arg-type]
        say=lines.append,
        host=Host(Runtime(calls)),
    )  # type: ignore[arg-type]


def test_retire_forgets_and_commits_an_owner_that_exited(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    ctx = context(calls, [])

    def ctl(path: str, cmd: str, **kw: Any) -> None:
        calls.append(("ctl", path, cmd))
        ctx.host.runtime.up.discard("100")  # type: ignore[attr-defined]

    monkeypatch.setattr(stages, "ctl", ctl)
    run = stages.Run(
        exec_path=None,
        image=None,
        timeout=20.0,
        out=Outcome(2, "refused"),
        active=OLD,
        new_pid="4242",
    )
    stage = stages.Retire()
    assert stage.title(ctx, run) == "retire teamd (exits without touching anything)"
    assert stage.run(ctx, run) == ""
    assert calls == [
        ("ctl", "/run/teamd.sock", "retire"),
        ("drop_instance", "teamd"),
        ("committed", "teamd", "4242"),
    ]


def test_commit_after_the_takeover_is_best_effort() -> None:
    lines: list[str] = []
    ctx = context([], lines)
    run = stages.Run(
        exec_path=None, image=None, timeout=20.0, out=Outcome(2, "refused"), active=OLD, run_id="r1"
    )
    assert stages.Commit().run(ctx, run) == ""
    assert run.unjournaled == "redis unreachable: Connection refused"
    assert lines == ["      warning: journal not written: redis unreachable: Connection refused"]
