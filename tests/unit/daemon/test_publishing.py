"""LAG state out (daemon/publishing.py) through the real runner and publisher mirror, no Redis:
what would be written is read from the publisher's desired state."""

from __future__ import annotations

from pathlib import Path

from helpers.lacp_wire import CFG, PORTS, SYS_A, make_lag

from teamd_shim.daemon.runner import LagRunner
from teamd_shim.db.publisher import Publisher
from teamd_shim.db.schema import state_member
from teamd_shim.db.sonic_db import Endpoint
from teamd_shim.io.dataplane import NullDataplane
from teamd_shim.io.links import LinkInfo
from teamd_shim.model.running_lag import RunningLag
from teamd_shim.roles.machine import Role, RoleMachine


def runner(tmp_path: Path) -> tuple[LagRunner, Publisher]:
    publisher = Publisher(Endpoint(unix_path=str(tmp_path / "never-used.sock")))
    r = LagRunner(
        NullDataplane(),
        publisher,
        RoleMachine(Role.ACTIVE),
        on_effects=lambda effects: None,
        on_rx=lambda *frame: None,
    )
    r.lags["PortChannel1"] = RunningLag(cfg=CFG, lacp=make_lag(SYS_A, 1, fast_rate=True))
    return r, publisher


def test_a_link_table_the_shim_replaced_wholesale_is_the_one_published(tmp_path: Path) -> None:
    """The shim assigns `runner.links` a new table on every rtnetlink dump; a publisher that
    kept the first table published `link.up: false` for up links (seen in CI once)."""
    r, publisher = runner(tmp_path)
    r.links = {p: LinkInfo(p, i, f"02:00:00:00:10:0{i}", True) for p, i in PORTS.items()}
    r.mark_dirty(["PortChannel1"])
    r.publishing.flush()
    for port in PORTS:
        fields = publisher._desired[state_member("PortChannel1", port)]
        assert fields is not None and fields["link.up"] == "true", fields


def test_only_the_owner_publishes_and_the_rest_keep_it_dirty(tmp_path: Path) -> None:
    r, publisher = runner(tmp_path)
    r.rm = RoleMachine(Role.STANDBY)
    r.mark_dirty(["PortChannel1"])
    r.publishing.flush()
    assert publisher._desired == {} and r.publishing.dirty == {"PortChannel1"}
