"""Pure parsers for the text Open vSwitch 3.1 prints, so tests can judge the DUT by the partner.

OVS has no machine-readable form of `lacp/show`, `lacp/show-stats` or `bond/show`; these
functions turn the text into dicts. They are kept free of I/O so that they can be unit-tested
on samples captured from the real daemon (tests/data/ovs_*.txt).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = re.compile(r"^---- (?P<bond>\S+)(?P<stats> statistics)? ----$")
_MEMBER_LACP = re.compile(r"^member: (?P<name>\S+): (?P<status>\w+) (?P<att>attached|detached)$")
_MEMBER_STATS = re.compile(r"^member: (?P<name>\S+):$")
_MEMBER_BOND = re.compile(r"^member (?P<name>\S+): (?P<state>enabled|disabled)$")
_EVENT = re.compile(
    r"^(?P<ts>\S+)\|(?P<seq>\d+)\|bond\|INFO\|member (?P<name>\S+): (?P<state>enabled|disabled)$"
)

# `lacp/show-stats` labels -> stable keys (unknown labels fall back to snake_case).
_STATS_KEYS = {
    "TX PDUs": "tx_pdus",
    "RX PDUs": "rx_pdus",
    "RX Bad PDUs": "rx_bad",
    "RX Marker Request PDUs": "rx_marker_request",
    "Link Expired": "link_expired",
    "Link Defaulted": "link_defaulted",
    "Carrier Status Changed": "carrier_changed",
}


def _key(label: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", label.strip().lower()).strip("_")


def _value(v: str) -> object:
    v = v.strip()
    if v in ("true", "false"):
        return v == "true"
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    return v


def _split_kv(line: str) -> tuple[str, str] | None:
    if ":" not in line:
        return None
    k, _, v = line.partition(":")
    return k.strip(), v.strip()


def parse_lacp_show(text: str) -> dict[str, dict]:
    """`ovs-appctl lacp/show` -> {bond: {...}}.

    Per bond: status ('active'|'passive'), negotiated (bool), sys_id, sys_priority,
    aggregation_key, lacp_time, and members {name: {status ('current'|'expired'|'defaulted'),
    attached, port_id, port_priority, may_enable, actor: {...}, partner: {...}}} where actor and
    partner hold sys_id, sys_priority, port_id, port_priority, key and state (list of words).
    """
    bonds: dict[str, dict] = {}
    bond: dict | None = None
    member: dict | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _HEADER.match(line)
        if m:
            bond = {"members": {}}
            bonds[m["bond"]] = bond
            member = None
            continue
        if bond is None:
            continue
        m = _MEMBER_LACP.match(line)
        if m:
            member = {
                "status": m["status"],
                "attached": m["att"] == "attached",
                "actor": {},
                "partner": {},
            }
            bond["members"][m["name"]] = member
            continue
        kv = _split_kv(line)
        if kv is None:
            continue
        k, v = kv
        side = k.split(" ", 1)[0]
        if member is not None and side in ("actor", "partner"):
            field = _key(k.split(" ", 1)[1])
            member[side][field] = v.split() if field == "state" else _value(v)
        elif member is not None:
            member[_key(k)] = _value(v)
        elif k == "status":
            words = v.split()
            bond["status"] = words[0] if words else ""
            bond["negotiated"] = "negotiated" in words[1:]
        else:
            bond[_key(k)] = _value(v)
    return bonds


def parse_lacp_stats(text: str) -> dict[str, dict[str, dict[str, int]]]:
    """`ovs-appctl lacp/show-stats` -> {bond: {member: {tx_pdus, rx_pdus, rx_bad,
    rx_marker_request, link_expired, link_defaulted, carrier_changed}}} (all ints)."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    bond: dict[str, dict[str, int]] | None = None
    member: dict[str, int] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _HEADER.match(line)
        if m:
            bond = out.setdefault(m["bond"], {})
            member = None
            continue
        m = _MEMBER_STATS.match(line)
        if m and bond is not None:
            member = bond.setdefault(m["name"], {})
            continue
        kv = _split_kv(line)
        if kv is None or member is None:
            continue
        label, v = kv
        try:
            member[_STATS_KEYS.get(label, _key(label))] = int(v)
        except ValueError:
            continue
    return out


def parse_bond_show(text: str) -> dict[str, dict]:
    """`ovs-appctl bond/show` -> {bond: {lacp_status, members: {name: enabled}, may_enable:
    {name: bool}, active_member: name | None, ...other top-level fields as strings/ints}}."""
    out: dict[str, dict] = {}
    bond: dict | None = None
    member: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _HEADER.match(line)
        if m:
            bond = {"members": {}, "may_enable": {}, "active_member": None}
            out[m["bond"]] = bond
            member = None
            continue
        if bond is None:
            continue
        m = _MEMBER_BOND.match(line)
        if m:
            member = m["name"]
            bond["members"][member] = m["state"] == "enabled"
            continue
        if member is not None and line == "active member":
            bond["active_member"] = member
            continue
        kv = _split_kv(line)
        if kv is None:
            continue
        k, v = kv
        if member is not None and k == "may_enable":
            bond["may_enable"][member] = v == "true"
        elif member is None:
            bond[_key(k)] = _value(v)
    return out


@dataclass(frozen=True)
class MemberEvent:
    """One `bond|INFO|member X: enabled|disabled` line: OVS's own record of a member flap."""

    timestamp: str
    member: str
    enabled: bool
    line: str


def parse_member_events(text: str) -> list[MemberEvent]:
    """All `member X: enabled|disabled` lines of an ovs-vswitchd log excerpt, in order.

    These lines are not rate-limited (unlike `link state` or `active member` lines), so any
    new `disabled` line during a handover is a flap the partner saw.
    """
    events = []
    for line in text.splitlines():
        m = _EVENT.match(line.strip())
        if m:
            events.append(MemberEvent(m["ts"], m["name"], m["state"] == "enabled", line.strip()))
    return events


def stats_delta(before: dict, after: dict) -> dict[str, dict[str, dict[str, int]]]:
    """Per-counter difference after - before of two parse_lacp_stats() results.

    A member missing from `before` counts from zero; one missing from `after` is left out.
    """
    out: dict[str, dict[str, dict[str, int]]] = {}
    for bond, members in after.items():
        for name, counters in members.items():
            prev = before.get(bond, {}).get(name, {})
            out.setdefault(bond, {})[name] = {k: v - prev.get(k, 0) for k, v in counters.items()}
    return out
