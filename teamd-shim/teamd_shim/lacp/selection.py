"""Aggregator selection (802.1AX Selection Logic, as Linux and teamd do it): which ports aggregate
together, which aggregator is selected, and the ids aggregators keep. Pure functions over the
LAG's ports, in port-number order; they set `selected` and `aggregator_id` and nothing else.
"""

from __future__ import annotations

from teamd_shim.lacp.constants import AGGREGATION
from teamd_shim.lacp.pdu import ZERO_INFO
from teamd_shim.lacp.port import MuxState, Port, RxState, Selected
from teamd_shim.lacp.settings import LagSettings

AggregatorKey = tuple[int, bytes, int, int]  # partner priority, system, key; port if Individual


def aggregator_key(port: Port) -> AggregatorKey:
    """Ports aggregate together iff they see the same partner system, priority and key, and
    the partner lets them aggregate: a port whose partner says Individual (Aggregation bit
    clear) is an aggregator of its own (802.1AX selection; Linux `__agg_has_partner` and
    `is_individual`)."""
    p = port.partner
    alone = 0 if p.state & AGGREGATION else port.port_number
    return (p.system_priority, p.system, p.key, alone)


def eligible(port: Port, cfg: LagSettings) -> bool:
    """Selectable: current, or expired with a real partner identity (teamd: not defaulted or
    disabled). A never-heard partner (all-zero identity) is not selectable, so a cold start
    advertises Sync=0 instead of claiming an aggregator nobody agreed to. Nothing is
    selectable while the LAG is admin down."""
    if not port.link_up or not cfg.admin_up:
        return False
    if port.rx_state is RxState.CURRENT:
        return True
    if cfg.fallback and port.rx_state is RxState.DEFAULTED:
        return True  # SONiC's LACP fallback: no partner heard, the port runs without LACP
    return port.rx_state is RxState.EXPIRED and port.partner.system != ZERO_INFO.system


def inputs(order: list[Port], cfg: LagSettings) -> tuple[object, ...]:
    """Everything `select` (with `eligible`, `aggregator_key`, `number_aggregators`) reads:
    equal inputs give equal outputs, so a caller may skip a run that would change nothing."""
    return (
        cfg.admin_up,
        cfg.fallback,
        tuple(
            (
                p.port_number,
                p.link_up,
                p.rx_state,
                p.partner,
                p.selected,
                p.mux_state,
                p.aggregator_id,
            )  # fmt: skip
            for p in order
        ),
    )


def select(order: list[Port], cfg: LagSettings) -> bool:
    """Aggregator selection, stable like Linux's default `ad_select=stable`: the aggregator
    that has a SELECTED port keeps being selected while it has any eligible port, even when
    a larger one appears (re-selecting would take the working links down to gain some);
    otherwise the group with most ports, then the lowest port number. Other eligible ports
    are STANDBY, like teamd's "not in selected aggregator" (hld §12)."""
    groups: dict[AggregatorKey, list[Port]] = {}
    for port in order:
        if eligible(port, cfg):
            groups.setdefault(aggregator_key(port), []).append(port)
    best: list[Port] = []
    if groups:
        best = min(
            groups.values(),
            key=lambda g: (
                not any(p.selected is Selected.SELECTED for p in g),
                -len(g),
                g[0].port_number,
            ),
        )
    number_aggregators(groups, order, cfg)
    changed = False
    for port in order:
        if not eligible(port, cfg) or (
            port.selected is Selected.UNSELECTED and port.mux_state is not MuxState.DETACHED
        ):
            # A deselected port must detach from its old aggregator before it may join
            # one again, so a partner change is always seen as disable, then re-enable.
            sel = Selected.UNSELECTED
        elif port in best:
            sel = Selected.SELECTED
        else:
            sel = Selected.STANDBY
        if sel is not port.selected:
            port.selected = sel
            changed = True
    return changed


def number_aggregators(
    groups: dict[AggregatorKey, list[Port]], order: list[Port], cfg: LagSettings
) -> None:
    """Give each aggregator an id that stays while it has members (as Linux's aggregator
    structures do). A port whose partner identity changes forgets its id (Port.record_pdu),
    so it cannot take the id along; groups keep the id most of their ports still hold
    (the group with more holders first), then new groups take their lowest free port
    number. A port moving to another partner therefore never renumbers the others."""
    taken: set[int] = set()
    fresh: list[list[Port]] = []
    claims: list[tuple[int, int, list[Port]]] = []
    for group in groups.values():
        held: dict[int, int] = {}
        for p in group:
            if p.aggregator_id is not None:
                held[p.aggregator_id] = held.get(p.aggregator_id, 0) + 1
        if held:
            agg_id, count = min(held.items(), key=lambda kv: (-kv[1], kv[0]))
            claims.append((count, agg_id, group))
        else:
            fresh.append(group)
    for _count, agg_id, group in sorted(claims, key=lambda c: (-c[0], c[1])):
        if agg_id in taken:
            fresh.append(group)
            continue
        taken.add(agg_id)
        for p in group:
            p.aggregator_id = agg_id
    for group in sorted(fresh, key=lambda g: g[0].port_number):
        candidates = [p.port_number for p in group] + [p.port_number for p in order]
        agg_id = next((i for i in candidates if i not in taken), max(taken, default=0) + 1)
        taken.add(agg_id)
        for p in group:
            p.aggregator_id = agg_id
    for p in order:
        if not eligible(p, cfg):
            p.aggregator_id = None
