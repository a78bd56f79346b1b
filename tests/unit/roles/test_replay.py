"""The replay cut of a takeover (hld §7, "The replay cut"), with real LACP cores and a fake clock.

The old cut compared the time the *standby* read a frame with the snapshot's time; which side
of the cut a frame fell on then depended on when each process got to read it. The cut is now the
kernel's receive stamp of the last frame the owner applied, per port; both processes see the
same stamp for one frame (tests/integration/test_packet_stamps.py).
"""

from __future__ import annotations

from helpers.lacp_wire import CFG, PORTS, SYS_A, SYS_B, Wire, make_lag, partner_frame

from teamd_shim.io.links import LinkInfo
from teamd_shim.lacp import Lag, LagSettings
from teamd_shim.model.contract import SnapshotMeta
from teamd_shim.model.running_lag import RunningLag
from teamd_shim.roles.replay import RX_KEEP_S, RxLog, restore


def cut_at(t: float, rx_cut: dict[str, int]) -> SnapshotMeta:
    return SnapshotMeta(epoch=3, t=t, final=True, owner="teamd", rx_cut=rx_cut)


def converged() -> tuple[Wire, Lag]:
    """Our LAG (a) and its partner (b), converged and steady at t = 5."""
    a, b = make_lag(SYS_A, 1, fast_rate=True), make_lag(SYS_B, 2, fast_rate=True)
    w = Wire(a, b)
    w.run_until(5.0)
    return w, b


def standby_lags() -> dict[str, RunningLag]:
    """The standby's own running LAG, as it loaded it from CONFIG_DB."""
    own = make_lag(SYS_A, 1, fast_rate=True)
    assert own.settings == LagSettings("PortChannel1", SYS_A, 1, fast_rate=True)
    return {"PortChannel1": RunningLag(cfg=CFG, lacp=own)}


def links(up: bool = True) -> dict[str, LinkInfo]:
    return {p: LinkInfo(p, i, f"02:00:00:00:10:0{i}", up) for p, i in PORTS.items()}


def rx_pdus(lags: dict[str, RunningLag], port: str) -> int:
    return int(lags["PortChannel1"].lacp.port_view(port).counters["rx_pdus"])


def test_a_frame_the_owner_applied_is_not_applied_again_however_late_we_read_it() -> None:
    w, b = converged()
    snap = {"PortChannel1": w.a.to_dict()}
    before = rx_pdus({"PortChannel1": RunningLag(cfg=CFG, lacp=w.a)}, "e0")
    meta = cut_at(5.0, {"e0": 1000, "e1": 1000})
    rx = RxLog()
    # the owner applied the frame stamped 1000 before its snapshot; the standby, busy, read it
    # only after the snapshot's time: the old cut (read time > t) applied it a second time
    rx.add("e0", partner_frame(b, "e0", 4.99), 5.05, 1000)
    lags = standby_lags()
    assert restore(lags, meta, snap, rx, links(), {p: "PortChannel1" for p in PORTS}, 5.1) == []
    assert rx_pdus(lags, "e0") == before


def test_a_frame_the_owner_had_not_read_yet_is_replayed_however_early_we_read_it() -> None:
    w, b = converged()
    snap = {"PortChannel1": w.a.to_dict()}
    before = rx_pdus({"PortChannel1": RunningLag(cfg=CFG, lacp=w.a)}, "e1")
    meta = cut_at(5.0, {"e0": 1000, "e1": 1000})
    rx = RxLog()
    # stamped after the owner's last applied frame, but read by the standby before the
    # snapshot's time (the owner's loop was refreshing every port): the old cut lost it
    rx.add("e1", partner_frame(b, "e1", 4.98), 4.99, 1001)
    lags = standby_lags()
    restore(lags, meta, snap, rx, links(), {p: "PortChannel1" for p in PORTS}, 5.1)
    assert rx_pdus(lags, "e1") == before + 1


def test_a_port_without_a_stamp_in_the_snapshot_falls_back_to_the_snapshot_time() -> None:
    w, b = converged()
    snap = {"PortChannel1": w.a.to_dict()}
    before = rx_pdus({"PortChannel1": RunningLag(cfg=CFG, lacp=w.a)}, "e0")
    rx = RxLog()
    rx.add("e0", partner_frame(b, "e0", 4.9), 4.9, 7)  # before t: in the snapshot already
    rx.add("e0", partner_frame(b, "e0", 5.2), 5.2, 8)  # after t: replayed
    lags = standby_lags()
    restore(lags, cut_at(5.0, {}), snap, rx, links(), {p: "PortChannel1" for p in PORTS}, 5.3)
    assert rx_pdus(lags, "e0") == before + 1


def test_a_link_that_came_up_after_the_snapshot_is_applied_before_the_replayed_frames() -> None:
    w, b = converged()
    w.a.set_link("e1", False, 5.0)  # e1 was down when the owner took its snapshot
    snap = {"PortChannel1": w.a.to_dict()}
    assert not snap["PortChannel1"]["ports"]["e1"]["link_up"]
    rx = RxLog()
    # e1 came back up; the partner's first PDU on it arrived before the takeover
    rx.add("e1", partner_frame(b, "e1", 5.3), 5.3, 2000)
    lags = standby_lags()
    before = rx_pdus({"PortChannel1": RunningLag(cfg=CFG, lacp=w.a)}, "e1")
    restore(
        lags,
        cut_at(5.0, {"e0": 1000}),
        snap,
        rx,
        links(up=True),
        {p: "PortChannel1" for p in PORTS},
        5.4,
    )
    view = lags["PortChannel1"].lacp.port_view("e1")
    # replayed before the link was caught up, the PDU met a port with no link and was dropped
    assert view.counters["rx_pdus"] == before + 1
    assert view.rx_state == "current"


def test_frames_older_than_the_keep_window_are_dropped() -> None:
    rx = RxLog()
    rx.add("e0", b"x", 2.0, 1)
    rx.add("e0", b"y", 2.0 + RX_KEEP_S - 0.5, 2)
    assert [r.frame for r in rx] == [b"x", b"y"]
    rx.add("e0", b"z", 2.0 + RX_KEEP_S + 0.1, 3)
    assert [r.frame for r in rx] == [b"y", b"z"]
