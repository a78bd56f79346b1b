"""The owner's resync after a stall or a rollback (`LagRunner.sync_dataplane`) against a fake
kernel view with writes still queued (io/dataplane/queued.py): pure logic, no kernel."""

from __future__ import annotations

from pathlib import Path

from helpers.lacp_wire import CFG, SYS_A, make_lag

from teamd_shim.daemon.runner import LagRunner
from teamd_shim.db.publisher import Publisher
from teamd_shim.db.sonic_db import Endpoint
from teamd_shim.io.dataplane import NullDataplane
from teamd_shim.io.dataplane.base import TeamDevice
from teamd_shim.io.dataplane.queued import QueuedWrites, WriteKey
from teamd_shim.model.running_lag import RunningLag
from teamd_shim.roles.machine import Role, RoleMachine

LAG = "PortChannel1"
PORT = "Ethernet0"


class KernelView(NullDataplane):
    """A kernel LAG whose carrier / `enabled` reads are `kernel`, with `queued` writes pending
    (as the team backend's worker has them); records what the resync writes."""

    name = "fake-kernel"

    def __init__(self, carrier: bool, enabled: bool) -> None:
        self.carrier, self.enabled = carrier, enabled
        self.queued = QueuedWrites()
        self.writes: list[tuple[str, bool]] = []

    def device(self, lag: str) -> TeamDevice | None:
        return TeamDevice(1, SYS_A, admin_up=True, oper_up=self.carrier, mtu=9100)

    def port_enabled(self, lag: str, port: str) -> bool | None:
        return self.enabled

    def queued_carrier(self, lag: str) -> bool | None:
        return self.queued.value(WriteKey(lag))

    def queued_enabled(self, lag: str, port: str) -> bool | None:
        return self.queued.value(WriteKey(lag, port))

    def set_carrier(self, lag: str, up: bool) -> None:
        self.writes.append(("carrier", up))

    def set_port_enabled(self, lag: str, port: str, enabled: bool) -> None:
        self.writes.append((port, enabled))


def resync(tmp_path: Path, dp: KernelView) -> list[tuple[str, bool]]:
    r = LagRunner(
        dp,
        Publisher(Endpoint(unix_path=str(tmp_path / "never-used.sock"))),
        RoleMachine(Role.ACTIVE),
        on_effects=lambda effects: None,
        on_rx=lambda *frame: None,
    )
    r.lags[LAG] = RunningLag(
        cfg=CFG, lacp=make_lag(SYS_A, 1, fast_rate=True), carrier=True, enabled={PORT: True}
    )
    r.sync_dataplane()
    return dp.writes


def test_a_queued_adoption_is_corrected_although_the_kernel_still_agrees(tmp_path: Path) -> None:
    """The cold-adoption bug: the kernel still shows the killed owner's carrier up and port
    enabled, the adoption's "down, disabled" is queued; LACP decided up while suspect. Compared
    with the kernel alone nothing was written and the queued "down" stuck."""
    dp = KernelView(carrier=True, enabled=True)
    dp.queued.queue(WriteKey(LAG), False)
    dp.queued.queue(WriteKey(LAG, PORT), False)
    assert resync(tmp_path, dp) == [(PORT, True), ("carrier", True)]


def test_nothing_queued_and_the_kernel_agreeing_writes_nothing(tmp_path: Path) -> None:
    """A promoted standby has nothing queued: it must not write what it did not decide."""
    assert resync(tmp_path, KernelView(carrier=True, enabled=True)) == []


def test_a_difference_with_the_kernel_is_written_when_nothing_is_queued(tmp_path: Path) -> None:
    dp = KernelView(carrier=False, enabled=False)
    assert resync(tmp_path, dp) == [(PORT, True), ("carrier", True)]


def test_a_queued_write_that_agrees_suppresses_a_redundant_one(tmp_path: Path) -> None:
    dp = KernelView(carrier=False, enabled=False)
    dp.queued.queue(WriteKey(LAG), True)
    dp.queued.queue(WriteKey(LAG, PORT), True)
    assert resync(tmp_path, dp) == []


def test_a_write_counts_as_queued_until_its_last_ticket_is_applied() -> None:
    q = QueuedWrites()
    key = WriteKey(LAG)
    first = q.queue(key, False)
    second = q.queue(key, True)
    q.applied(key, first)  # an older write done: the newer one is still pending
    assert q.value(key) is True
    q.applied(key, second)
    assert q.value(key) is None
    assert q.value(WriteKey(LAG, PORT)) is None
