"""The contracts between processes, as typed frozen records: the control socket's replies
(shim -> orchestrator) and a handover snapshot's `_meta` (one shim -> the next, through Redis).

Both sides build and read these instead of dicts read key by key, so a renamed or missing field
fails in one place (`from_json`) with a message naming it, not as a KeyError deep inside a
handover. On the wire they are JSON objects with the same field names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class ContractError(ValueError):
    """A control reply that does not have the shape this version expects."""


@dataclass(frozen=True, slots=True)
class HandedFrom:
    """Whom a new owner took over from, and the old owner's last PDU instant per port."""

    owner: str
    epoch: int | None
    t: float | None
    last_tx: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """`ctl info` (and the reply of yield, takeover, resume, shadow)."""

    name: str
    role: str
    epoch: int | None
    pid: int
    pidns: str
    ready: bool
    ready_detail: str
    final_written: bool
    yielded_at: float | None
    takeover_at: float | None
    takeover_error: str
    confirmed: bool
    first_tx: dict[str, float]
    handed_from: HandedFrom | None
    lags: tuple[str, ...]
    ports_by_lag: dict[str, tuple[str, ...]]
    # filled in by the control server
    dataplane: str = ""
    redis: str = ""
    redis_connected: bool = False

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["lags"] = list(self.lags)
        d["ports_by_lag"] = {k: list(v) for k, v in self.ports_by_lag.items()}
        if self.handed_from is None:
            d["handed_from"] = {}
        return d

    @classmethod
    def from_json(cls, d: Any) -> InstanceInfo:
        if not isinstance(d, dict):
            raise ContractError(f"`info` reply is not an object: {d!r}")
        try:
            hf = d["handed_from"] or None
            return cls(
                name=str(d["name"]), role=str(d["role"]),
                epoch=None if d["epoch"] is None else int(d["epoch"]),
                pid=int(d["pid"]), pidns=str(d.get("pidns", "")),
                ready=bool(d["ready"]), ready_detail=str(d["ready_detail"]),
                final_written=bool(d["final_written"]),
                yielded_at=_opt_float(d["yielded_at"]),
                takeover_at=_opt_float(d["takeover_at"]),
                takeover_error=str(d["takeover_error"] or ""),
                confirmed=bool(d["confirmed"]),
                first_tx={str(k): float(v) for k, v in d["first_tx"].items()},
                handed_from=None if hf is None else HandedFrom(
                    owner=str(hf["owner"]),
                    epoch=None if hf.get("epoch") is None else int(hf["epoch"]),
                    t=_opt_float(hf.get("t")),
                    last_tx={str(k): _opt_float(v) for k, v in hf.get("last_tx", {}).items()}),
                lags=tuple(str(x) for x in d["lags"]),
                ports_by_lag={str(k): tuple(str(p) for p in v)
                              for k, v in d["ports_by_lag"].items()},
                dataplane=str(d.get("dataplane", "")), redis=str(d.get("redis", "")),
                redis_connected=bool(d.get("redis_connected", False)),
            )  # fmt: skip
        except KeyError as e:
            raise ContractError(
                f"`info` reply lacks field {e} (shim and orchestrator of different versions?)"
            ) from None
        except (TypeError, ValueError, AttributeError) as e:
            raise ContractError(f"`info` reply has a malformed field: {e}") from None


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """The `_meta` field of a handover snapshot (TEAMD_SHIM_STATE|<name>, the shadow one, and
    TEAMD_SHIM_FINAL|<name>, the yield's), next to one field per LAG (`Lag.to_dict()`)."""

    epoch: int | None  # the owner's epoch when it was taken
    t: float  # the owner's CLOCK_MONOTONIC when it was taken (one clock per host)
    final: bool
    owner: str
    # per port, the kernel receive stamp (ns) of the last frame applied: the replay cut (hld §7)
    rx_cut: dict[str, int] = field(default_factory=dict)
    # a shadow only: per LAG, when its entry was taken (entries are re-sent when they changed
    # and on a refresh round, so they differ in age; a port's cut is its LAG entry's, hld
    # §14.7); the standby reads only the entries whose time moved. Empty: all taken at `t`.
    lag_t: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Any) -> SnapshotMeta:
        if not isinstance(d, dict):
            raise ContractError(f"snapshot `_meta` is not an object: {d!r}")
        try:
            return cls(
                epoch=None if d["epoch"] is None else int(d["epoch"]),
                t=float(d["t"]),
                final=bool(d["final"]),
                owner=str(d["owner"]),
                rx_cut={str(k): int(v) for k, v in (d.get("rx_cut") or {}).items()},
                lag_t={str(k): float(v) for k, v in (d.get("lag_t") or {}).items()},
            )
        except KeyError as e:
            raise ContractError(
                f"snapshot `_meta` lacks field {e} (shims of different versions?)"
            ) from None
        except (TypeError, ValueError, AttributeError) as e:
            raise ContractError(f"snapshot `_meta` has a malformed field: {e}") from None


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)
