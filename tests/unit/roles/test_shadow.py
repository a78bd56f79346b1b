"""The shadow by what changed (roles/shadow.py, hld §14.7), on real LACP cores and a fake clock.

A Redis hash is a dict here: the publisher writes the fields that differ and deletes the ones
that are gone, so `hash = dict(fields)` is what Redis holds after a round.
"""

from __future__ import annotations

import json

from helpers.lacp_wire import CFG, PORTS, SYS_A, SYS_B, Wire, make_lag

from teamd_shim.db.ownership import META
from teamd_shim.io.links import LinkInfo
from teamd_shim.lacp import Lag
from teamd_shim.model.contract import SnapshotMeta
from teamd_shim.model.running_lag import RunningLag
from teamd_shim.roles.replay import RxLog, restore
from teamd_shim.roles.shadow import REFRESH_ROUNDS, ShadowView, ShadowWriter


def wires(n: int) -> dict[str, Wire]:
    out = {}
    for i in range(n):
        w = Wire(make_lag(SYS_A, 1, fast_rate=True), make_lag(SYS_B, 2, fast_rate=True))
        w.run_until(5.0)
        out[f"PortChannel{i}"] = w
    return out


def run(ws: dict[str, Wire], until: float) -> None:
    for w in ws.values():
        w.run_until(until)


def lags_of(ws: dict[str, Wire]) -> dict[str, Lag]:
    return {name: w.a for name, w in ws.items()}


def read(view: ShadowView, redis_hash: dict[str, str]) -> set[str]:
    """What the follow thread does against the hash: `_meta`, then the entries it wants."""
    head = SnapshotMeta.from_json(json.loads(redis_hash[META]))
    want = view.wanted(head)
    names = [k for k in redis_hash if k != META] if want is None else want
    got = {n: json.loads(redis_hash[n]) for n in names if n in redis_hash}
    return view.merge(head, got, whole=want is None)


def test_an_idle_lag_is_encoded_once_per_refresh_round_and_a_change_at_once() -> None:
    ws = wires(8)
    out = ShadowWriter()
    kw = {"epoch": 3, "owner": "teamd"}
    out.fields(lags_of(ws), {}, now=5.0, **kw)
    assert out.encoded == 8  # the first round: everything
    sent: dict[str, int] = dict.fromkeys(ws, 0)
    for k in range(1, 2 * REFRESH_ROUNDS + 1):
        run(ws, 5.0 + 0.5 * k)  # clocks and counters move on every LAG
        fields = out.fields(lags_of(ws), {}, now=5.0 + 0.5 * k, **kw)
        assert out.encoded == 8 // REFRESH_ROUNDS
        meta = SnapshotMeta.from_json(json.loads(fields[META]))
        for name, t in meta.lag_t.items():
            sent[name] += t == 5.0 + 0.5 * k
    assert sent == dict.fromkeys(ws, 2)  # each re-sent twice in 2 x REFRESH_ROUNDS rounds
    ws["PortChannel5"].a.set_link("e0", False, 9.1)
    run(ws, 9.5)
    fields = out.fields(lags_of(ws), {}, now=9.5, **kw)
    meta = SnapshotMeta.from_json(json.loads(fields[META]))
    assert meta.lag_t["PortChannel5"] == 9.5  # changed: sent in the very next round


def test_the_standby_reads_only_the_entries_whose_time_moved() -> None:
    ws = wires(8)
    out, view = ShadowWriter(), ShadowView()
    redis_hash = out.fields(lags_of(ws), {}, epoch=3, owner="teamd", now=5.0)
    assert read(view, redis_hash) == set(ws)  # the whole hash the first time
    run(ws, 5.5)
    redis_hash = out.fields(lags_of(ws), {}, epoch=3, owner="teamd", now=5.5)
    meta = SnapshotMeta.from_json(json.loads(redis_hash[META]))
    moved = {n for n, t in meta.lag_t.items() if t == 5.5}
    assert len(moved) == 8 // REFRESH_ROUNDS
    assert read(view, redis_hash) == moved
    composed, lags = view.snapshot()
    assert lags == {n: json.loads(v) for n, v in redis_hash.items() if n != META}
    assert composed.lag_t == meta.lag_t and composed.t == 5.5


def test_a_removed_lag_leaves_the_hash_the_cut_and_the_view() -> None:
    ws = wires(2)
    out, view = ShadowWriter(), ShadowView()
    cut = {"e0": 7, "e1": 8}
    read(view, out.fields(lags_of(ws), cut, epoch=3, owner="teamd", now=5.0))
    del ws["PortChannel1"]
    redis_hash = out.fields(lags_of(ws), cut, epoch=3, owner="teamd", now=5.5)
    assert set(redis_hash) == {META, "PortChannel0"}
    read(view, redis_hash)
    assert set(view.snapshot()[1]) == {"PortChannel0"}


def test_a_promotion_from_an_entry_two_rounds_old_is_exact() -> None:
    """The entry was taken at 5.0 with its cut; the active then heard more PDUs on each port
    and sent its entry no more (idle, not its refresh round). The standby restores it and
    replays its own frames after that cut: the receive side is where the active is, down to
    the PDU counters (seen failing with the writer sending the current cut for every port)."""
    w = Wire(make_lag(SYS_A, 1, fast_rate=True), make_lag(SYS_B, 2, fast_rate=True))
    rx, cut = RxLog(), {}
    stamp = 0

    def advance(until: float) -> None:
        nonlocal stamp
        start = len(w.log)
        w.run_until(until)
        for t, side, port, frame in w.log[start:]:
            if side == "b":  # the partner's PDUs: the active applies them, the standby keeps
                stamp += 1
                rx.add(port, frame, t, stamp)
                cut[port] = stamp

    advance(5.0)
    at_entry = dict(cut)
    out, view = ShadowWriter(), ShadowView()
    read(view, out.fields({"PortChannel1": w.a}, cut, epoch=3, owner="teamd", now=5.0))
    for k in (1, 2):  # rounds 2 and 3: not its refresh round, nothing changed
        advance(5.0 + 0.5 * k)
        fields = out.fields({"PortChannel1": w.a}, cut, epoch=3, owner="teamd", now=5.0 + 0.5 * k)
        assert SnapshotMeta.from_json(json.loads(fields[META])).rx_cut == at_entry
        read(view, fields)
    assert cut != at_entry  # the active applied more frames since
    meta, snap = view.snapshot()
    assert meta.lag_t == {"PortChannel1": 5.0} and meta.t == 6.0
    advance(6.7)
    own = {"PortChannel1": RunningLag(cfg=CFG, lacp=make_lag(SYS_A, 1, fast_rate=True))}
    links = {p: LinkInfo(p, i, f"02:00:00:00:10:0{i}", True) for p, i in PORTS.items()}
    problems = restore(own, meta, snap, rx, links, dict.fromkeys(PORTS, "PortChannel1"), 6.7)
    assert problems == []
    got = own["PortChannel1"].lacp
    for port in PORTS:
        ours, theirs = got.port_view(port), w.a.port_view(port)
        assert ours.counters["rx_pdus"] == theirs.counters["rx_pdus"]
        assert ours.rx_state == theirs.rx_state == "current"
        assert got.would_send(port) == w.a.would_send(port)
