"""Plain-text tables of the lab: both sides' view of every LAG, the lab's status."""

from __future__ import annotations

from typing import Any

from orchestrator.report import table
from teamd_lab.lab import Lab
from teamd_shim.db.redis_decoded import hgetall


def lag_rows(lab: Lab) -> list[list[str]]:
    """One row per LAG: our STATE_DB view beside the partner's (OVS) view and its counters."""
    state = lab.redis(6)
    bonds = lab.ovs.bond_show() if lab.ovs else {}
    stats = lab.ovs.lacp_stats() if lab.ovs else {}
    rows = []
    for lag in lab.lags():
        bond = lab.state["lags"][lag]["bond"]
        ours = hgetall(state, f"LAG_TABLE|{lag}")
        members = [(p, pp) for lg, p, pp in lab.members() if lg == lag]
        our_m = []
        for port, _ in members:
            m = hgetall(state, f"LAG_MEMBER_TABLE|{lag}|{port}")
            sel = "sel" if m.get("runner.selected") == "true" else "unsel"
            our_m.append(f"{port}:{m.get('runner.state', '?')}/{sel}")
        b = bonds.get(bond, {})
        their_m = [f"{pp}:{'en' if b.get('members', {}).get(pp) else 'dis'}" for _, pp in members]
        st = stats.get(bond, {})
        expired = sum(st.get(pp, {}).get("link_expired", 0) for _, pp in members)
        defaulted = sum(st.get(pp, {}).get("link_defaulted", 0) for _, pp in members)
        rows.append(
            [
                lag,
                ours.get("oper_status", "-"),
                " ".join(our_m),
                b.get("lacp_status", "-"),
                " ".join(their_m),
                str(expired),
                str(defaulted),
            ]
        )
    return rows


LAG_HEADERS = [
    "LAG",
    "oper",
    "our members (state/selected)",
    "partner",
    "partner members",
    "expired",
    "defaulted",
]


def format_lags(lab: Lab) -> str:
    return table(LAG_HEADERS, lag_rows(lab))


def format_lab_status(st: dict[str, Any]) -> str:
    lines = [
        f"lab {st['prefix']} ({st['phase']}) in {st['workdir']}",
        f"  redis: {st['redis_url']}",
        "  namespaces: "
        + ", ".join(
            f"{ns} {'present' if ok else 'MISSING'}" for ns, ok in st["namespaces"].items()
        ),
        "  processes: "
        + ", ".join(
            f"{k} pid {v['pid']} {'alive' if v['alive'] else 'DEAD'}"
            for k, v in st["processes"].items()
        ),
    ]
    ovs = st.get("ovs")
    if ovs:
        rows = []
        for bond, b in sorted(ovs["bonds"].items()):
            stats = ovs["lacp_stats"].get(bond, {})
            for m, enabled in sorted(b["members"].items()):
                s = stats.get(m, {})
                rows.append(
                    [
                        bond,
                        b["lacp_status"],
                        m,
                        "enabled" if enabled else "disabled",
                        s.get("rx_pdus", "-"),
                        s.get("link_expired", "-"),
                        s.get("link_defaulted", "-"),
                    ]
                )
        lines.append("  partner (Open vSwitch):")
        lines += [
            "    " + x
            for x in table(
                ["bond", "lacp", "member", "member state", "rx PDUs", "expired", "defaulted"], rows
            ).splitlines()
        ]
    elif st.get("ovs_error"):
        lines.append(f"  partner: unavailable ({st['ovs_error']})")
    return "\n".join(lines)
