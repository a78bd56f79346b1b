"""`teamd-shim --role auto` (cli._auto_role): the role a container handover puts in the new
container's command line, which outlives the handover (hld §11.3). Redis is faked by the two
questions the shim asks it (db.ownership), the clock and the sleep by the test."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from teamd_shim import cli
from teamd_shim.db.sonic_db import Endpoint, parse_url

ENDPOINT: Endpoint = parse_url("unix:///nowhere/redis.sock")


class Answers:
    """Replays answers (None: Redis did not answer) and counts the questions."""

    def __init__(self, *answers: bool | None) -> None:
        self.left: Iterator[bool | None] = iter(answers)
        self.asked = 0

    def __call__(self, *_args: object) -> bool | None:
        self.asked += 1
        return next(self.left)


def _args(role: str = "auto", hot: bool = False, name: str = "teamd~3") -> argparse.Namespace:
    return cli._parser().parse_args(["--role", role, "--name", name, *(["--hot"] if hot else [])])


@pytest.fixture
def sleeps() -> list[float]:
    return []


def _role(args: argparse.Namespace, sleeps: list[float]) -> str:
    t = [0.0]

    def sleep(s: float) -> None:
        sleeps.append(s)
        t[0] += s

    return cli._auto_role(args, ENDPOINT, sleep=sleep, clock=lambda: t[0])


def test_auto_is_standby_while_a_run_waits_for_us_and_active_otherwise(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    monkeypatch.setattr(cli, "awaited_as_standby", Answers(True))
    assert _role(_args(), sleeps) == "standby"
    monkeypatch.setattr(cli, "awaited_as_standby", Answers(False))
    assert _role(_args(), sleeps) == "active"  # a restart of a container a handover made
    assert sleeps == []


def test_auto_with_redis_silent_asks_again_until_it_answers_and_never_guesses(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    """The bug this replaces: `--role standby` with Redis slow kept the standby role for good
    (awaited_as_standby None -> "keep the role asked for"), every LAG down after a restart."""
    q = Answers(*([None] * 30), False)
    monkeypatch.setattr(cli, "awaited_as_standby", q)
    assert _role(_args(), sleeps) == "active"
    assert q.asked == 31
    assert sleeps[:4] == [0.1, 0.2, 0.4, 0.8] and max(sleeps) == cli.AUTO_RETRY_MAX_S
    warned = [r for r in caplog.records if "does not answer" in r.getMessage()]
    # ~27 s of silence: said at the start, then once every AUTO_LOG_EVERY_S, not per question
    assert 2 <= len(warned) <= 4, [r.getMessage() for r in warned]


def test_auto_hot_follows_a_live_owner_and_cold_starts_without_one(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    def never(*_a: object) -> bool:
        raise AssertionError("a hot standby asks whether an owner lives, not about a run")

    monkeypatch.setattr(cli, "awaited_as_standby", never)
    monkeypatch.setattr(cli, "live_owner", Answers(None, True))
    assert _role(_args(hot=True), sleeps) == "standby"
    monkeypatch.setattr(cli, "live_owner", Answers(False))
    assert _role(_args(hot=True), sleeps) == "active"


def test_explicit_roles_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "awaited_as_standby", Answers(None))
    # `--role standby` keeps its old meaning (Redis silent: the role asked for)
    assert cli._effective_role(_args("standby"), ENDPOINT) == "standby"
    assert cli._effective_role(_args("active"), ENDPOINT) == "active"
