"""The one "same host" rule (io/identity.process_alive) every process-naming record uses."""

from __future__ import annotations

import os
import subprocess

from teamd_shim.io.identity import host_id, proc_starttime, process_alive


def test_this_very_process_is_alive_and_a_reused_pid_is_not() -> None:
    me, st = str(os.getpid()), str(proc_starttime(os.getpid()))
    assert process_alive(host_id(), me, st) is True
    assert process_alive(host_id(), me, str(int(st) + 1)) is False  # same pid, another process


def test_a_process_that_exited_is_not_alive() -> None:
    p = subprocess.Popen(["true"])
    st = str(proc_starttime(p.pid))
    p.wait()
    assert process_alive(host_id(), str(p.pid), st) is False


def test_another_host_or_pid_namespace_cannot_be_told_from_here() -> None:
    me, st = str(os.getpid()), str(proc_starttime(os.getpid()))
    assert process_alive("elsewhere/pid:[1]", me, st) is None
    assert process_alive(host_id(), "", st) is None
