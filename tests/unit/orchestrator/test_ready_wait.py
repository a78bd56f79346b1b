"""The `ready` stage's limit (orchestrator/ready_wait.py): on the absence of progress, with a
fake clock."""

from __future__ import annotations

from orchestrator.ready_wait import ReadyWait


def test_a_slow_start_that_keeps_spending_cpu_is_waited_for() -> None:
    """Under emulation the interpreter alone took 11-24 s: more than the 20 s limit of old."""
    w = ReadyWait(0.0, stall_s=20.0)
    for t in range(0, 30):
        w.starting(float(t), cpu_s=0.8 * t)  # importing: CPU time grows every second
        assert w.expired(float(t)) is None
    w.answer(30.0, "no snapshot from the active yet", 2)
    assert w.expired(45.0) is None


def test_a_process_that_hangs_before_answering_is_given_up_after_the_stall_limit() -> None:
    w = ReadyWait(0.0, stall_s=20.0)
    w.starting(0.0, cpu_s=0.5)
    w.starting(5.0, cpu_s=2.0)
    w.starting(24.0, cpu_s=2.0)  # alive, spending nothing
    assert w.expired(24.0) is None
    why = w.expired(25.1)
    assert why is not None and "CPU time" in why


def test_once_it_answers_only_what_it_says_counts_not_its_idle_cpu() -> None:
    w = ReadyWait(0.0, stall_s=10.0)
    w.answer(1.0, "no snapshot from the active yet", 2)
    for t in range(2, 11):
        w.starting(float(t), cpu_s=float(t))  # its loop spends CPU: ignored now
    why = w.expired(11.5)
    assert why is not None and "what it says about READY" in why


def test_a_changing_detail_is_progress() -> None:
    w = ReadyWait(0.0, stall_s=10.0)
    w.answer(1.0, "no snapshot from the active yet", 2)
    w.answer(9.0, "PortChannel0001/Ethernet0: would-be PDU differs", 2)
    assert w.expired(18.0) is None
    assert w.expired(19.5) is not None


def test_no_cpu_reading_means_the_stall_limit_from_the_start() -> None:
    w = ReadyWait(0.0, stall_s=20.0)
    w.starting(10.0, cpu_s=None)
    assert w.expired(19.0) is None and w.expired(20.5) is not None


def test_the_whole_wait_is_capped() -> None:
    w = ReadyWait(0.0, stall_s=10.0)
    for t in range(0, 61):
        w.answer(float(t), f"step {t}", 2)  # always something new
    why = w.expired(60.5)
    assert why is not None and "60 s in all" in why


def test_a_growing_age_in_the_detail_is_not_progress() -> None:
    """readiness.py says "active's state is N s old" while the active's snapshot is stale."""
    w = ReadyWait(0.0, stall_s=10.0)
    for t in range(1, 12):
        w.answer(float(t), f"active's state is {t * 1.5:.1f} s old", 2)
    assert w.expired(11.5) is not None
