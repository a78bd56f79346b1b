"""What an earlier instance left in Redis that no CONFIG_DB entry names any more.

teammgrd deletes STATE_DB's LAG_TABLE when it starts; a shim that was SIGKILLed (or whose box
lost a LAG from CONFIG_DB while it was down) leaves its LAG and member keys, its refusals and the
APPL_DB entries behind, and orchagent and `show` would keep a LAG that no longer exists. A shim
started as the active reads those keys once and drops what the running config does not name
(hld §4, start-up sweep). The parsing and the decision are pure; the reads are the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from teamd_shim.db.schema import (
    APPL_DB,
    CONFIG_ERROR_TABLE,
    LAG_MEMBER_TABLE,
    LAG_TABLE,
    SEPARATORS,
    STATE_DB,
    STATE_HASH_PREFIX,
    Target,
    appl_lag,
    appl_member,
    keys_pattern,
    state_lag,
    state_member,
)

# KEYS patterns a sweep reads, per database
STATE_PATTERNS = (
    keys_pattern(STATE_DB, LAG_TABLE),
    keys_pattern(STATE_DB, LAG_MEMBER_TABLE),
    keys_pattern(STATE_DB, CONFIG_ERROR_TABLE),
)
APPL_PATTERNS = (
    keys_pattern(APPL_DB, LAG_TABLE),
    keys_pattern(APPL_DB, LAG_MEMBER_TABLE),
    STATE_HASH_PREFIX + keys_pattern(APPL_DB, LAG_TABLE),  # written, not yet consumed
    STATE_HASH_PREFIX + keys_pattern(APPL_DB, LAG_MEMBER_TABLE),
)


@dataclass(frozen=True)
class Found:
    """One key of a LAG table: the target that would delete it, and whose it is."""

    target: Target
    lag: str
    port: str | None = None


def parse(db: str, key: str) -> Found | None:
    """A raw Redis key of the LAG tables (or the shim's refusals) -> what it is; None if not."""
    sep = SEPARATORS[db]
    if db == APPL_DB and key.startswith(STATE_HASH_PREFIX):
        key = key[len(STATE_HASH_PREFIX) :]
    table, _, rest = key.partition(sep)
    if not rest:
        return None
    if table == CONFIG_ERROR_TABLE and db == STATE_DB:
        return Found(Target(STATE_DB, CONFIG_ERROR_TABLE, rest), lag="")
    if table == LAG_TABLE and sep not in rest:
        return Found(state_lag(rest) if db == STATE_DB else appl_lag(rest), rest)
    if table == LAG_MEMBER_TABLE:
        lag, _, port = rest.partition(sep)
        if lag and port and sep not in port:
            t = state_member(lag, port) if db == STATE_DB else appl_member(lag, port)
            return Found(t, lag, port)
    return None


def stale(
    found: Iterable[Found],
    lags: set[str],
    members: set[tuple[str, str]],
    refusals: set[Target],
) -> list[Target]:
    """The targets to drop: LAG keys of LAGs that do not run, member keys of members the
    running config does not name, refusals this instance does not hold."""
    out: dict[Target, None] = {}
    for f in found:
        if f.target.table == CONFIG_ERROR_TABLE:
            keep = f.target in refusals
        elif f.port is None:
            keep = f.lag in lags
        else:
            keep = (f.lag, f.port) in members
        if not keep:
            out[f.target] = None
    return list(out)
