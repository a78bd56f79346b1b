"""Is a standby READY to take the LAGs over? Pure: the judgement, not the Redis or the loop.

READY means a takeover now would be invisible to the partner (hld §7): the active's state is
fresh, every port that can transmit would send the very PDU the active sent last, the kernel
agrees with our view, and on every port where the active hears a fast partner we heard that same
partner ourselves, on our own socket, recently. The last rule is why this is judged from our own
view and not only from the active's snapshot compared with itself: restoring the snapshot makes
our PDUs byte-identical whether or not our socket hears anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from teamd_shim.lacp import Lag, PduError, PortInfo, decode_frame
from teamd_shim.model.running_lag import RunningLag
from teamd_shim.roles.replay import Received

SNAPSHOT_FRESH_S = 2.0  # an active's shadow older than this is not a state to take over from
READY_DETAIL = "identical PDUs on every port"
HEARD_S = 3.0  # we must have heard a fast partner ourselves this recently (3 of its periods)


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    detail: str  # READY_DETAIL, or the first problems, for `status` and the log

    @classmethod
    def of(cls, problems: list[str]) -> Readiness:
        return cls(not problems, READY_DETAIL if not problems else "; ".join(problems[:3]))


def snapshot_problems(
    running_lags: Mapping[str, RunningLag], snapshot_t: float, now: float
) -> list[str]:
    problems = [] if running_lags else ["no LAG configured yet"]
    age = now - snapshot_t
    if age > SNAPSHOT_FRESH_S:
        problems.append(f"active's state is {age:.1f} s old")
    return problems


def pdu_mismatches(
    running_lags: Mapping[str, RunningLag], lags: Mapping[str, dict[str, Any]]
) -> list[str]:
    """Ports where our next PDU is not the one the active sent last. A member whose link is
    down sends nothing, now or after a takeover: its last PDU (sent while up) cannot and need
    not match (before, a link going down while a standby started blocked READY until it came
    back, and the run rolled back)."""
    out = []
    for name, running in running_lags.items():
        for port in running.lacp.ports:
            if not running.lacp.can_transmit(port):
                continue
            want = lags[name]["ports"][port].get("last_tx_frame")
            if want and running.lacp.would_send(port) != bytes.fromhex(want):
                out.append(f"{name}/{port}: our PDU differs from the active's")
    return out


def own_view_differs(
    lags: Mapping[str, dict[str, Any]],
    rx: Iterable[Received],
    now: float,
    *,
    any_recent: bool = False,
) -> list[str]:
    """On every port the snapshot has current with a fast partner, we must have heard that same
    partner (system, key, port) ourselves within the last HEARD_S, on our own socket: in the
    last frame we heard, or with `any_recent` in any of them. Slow-rate LAGs are not judged
    (their partner speaks every 30 s)."""
    heard: dict[str, list[bytes | None]] = {}
    for r in rx:
        if len(r.frame) > 14 and r.frame[14] == 1 and now - r.at <= HEARD_S:  # LACPDUs
            heard.setdefault(r.port, []).append(r.frame)
    out = []
    for name, d in lags.items():
        if not d.get("settings", {}).get("fast_rate"):
            continue
        for port, pd in d.get("ports", {}).items():
            if pd.get("rx_state") != "current":
                continue
            want = PortInfo.from_dict(pd["partner"])
            frames = heard.get(port) or [None]
            problem = _partner_differs(name, port, want, frames[-1])
            if problem and any_recent:
                if any(not _partner_differs(name, port, want, f) for f in frames[:-1]):
                    problem = ""
            if problem:
                out.append(problem)
    return out


def _partner_differs(name: str, port: str, want: PortInfo, last: bytes | None) -> str:
    """'' when `last` (a frame we heard) is from the partner `want` names, else why not."""
    if last is None:
        return f"{name}/{port}: not heard the partner ourselves yet"
    try:
        got = decode_frame(last)[1].actor
    except PduError:
        return f"{name}/{port}: last frame we heard is not a LACPDU"
    if (got.system, got.system_priority, got.key, got.port) != (
        want.system,
        want.system_priority,
        want.key,
        want.port,
    ):
        return (
            f"{name}/{port}: we hear partner {got.to_dict()['system']} port {got.port}, "
            f"the active {want.to_dict()['system']} port {want.port}"
        )
    return ""


IDENTITY = ("name", "system", "system_priority", "key")  # what this box's CONFIG_DB decides


def adoption_problems(
    running_lags: Mapping[str, RunningLag],
    snap: Mapping[str, dict[str, Any]],
    rx: Iterable[Received],
    now: float,
) -> list[str]:
    """Why a final snapshot must not be taken over from (hld §15.5); [] when it may.

    Any container can write STATE_DB, so the snapshot is checked against what this box knows
    for itself: each LAG we run must parse, carry the actor identity (system id, priority, key)
    our own CONFIG_DB gives it, and, on every port it says is current with a fast partner, name
    the very partner we heard ourselves (own_view_differs). A LAG only one side has is a config
    change made during the handover, which the takeover applies; it is no problem."""
    out: list[str] = []
    parsed: dict[str, dict[str, Any]] = {}
    for name, running in running_lags.items():
        d = snap.get(name)
        if d is None:
            continue
        try:
            settings = Lag.from_dict(d).settings
        except (ValueError, TypeError) as e:
            out.append(f"{name}: unreadable state ({e})")
            continue
        ours = running.lacp.settings
        for field in IDENTITY:
            if getattr(settings, field) != getattr(ours, field):
                out.append(
                    f"{name}: actor {field} {_shown(getattr(settings, field))} is not this "
                    f"box's {_shown(getattr(ours, field))}"
                )
        parsed[name] = d
    if not out:
        try:
            # not necessarily the last frame: the partner may change its info after the yield
            # (the yielded owner no longer reads); the takeover replays that newer frame, and
            # the snapshot rightly holds the partner from before it
            out += own_view_differs(parsed, rx, now, any_recent=True)
        except (KeyError, TypeError, ValueError) as e:
            out.append(f"unreadable partner in the snapshot ({e!r})")
    return out


def _shown(value: object) -> str:
    return ":".join(f"{b:02x}" for b in value) if isinstance(value, bytes) else repr(value)


def lag_of(problem: str) -> str:
    """The LAG a per-LAG problem names (`<lag>: ...` or `<lag>/<port>: ...`)."""
    return problem.split(":", 1)[0].split("/", 1)[0]


class Verdicts:
    """Per-LAG READY problems, judged again only for the LAGs whose shadow entry changed or
    whose own config moved since they were judged: a standby's cost follows what changed
    (hld §14.7). A LAG judged READY is judged again at the latest on its refresh round."""

    def __init__(self) -> None:
        self._problems: dict[str, list[str]] = {}
        self._config: dict[str, tuple[object, ...]] = {}

    def due(self, running_lags: Mapping[str, RunningLag], changed: set[str] | None) -> list[str]:
        """The LAGs to restore and judge now (all of them when `changed` is None)."""
        for gone in self._problems.keys() - running_lags.keys():
            self._problems.pop(gone)
            self._config.pop(gone, None)
        return [
            name
            for name, running in running_lags.items()
            if changed is None or name in changed or self._config.get(name) != _config_of(running)
        ]

    def record(
        self, running_lags: Mapping[str, RunningLag], judged: list[str], problems: list[str]
    ) -> None:
        for name in judged:
            self._problems[name] = []
            self._config[name] = _config_of(running_lags[name])
        for p in problems:
            self._problems.setdefault(lag_of(p), []).append(p)

    def problems(self) -> list[str]:
        return [p for ps in self._problems.values() for p in ps]


def _config_of(running: RunningLag) -> tuple[object, ...]:
    return (running.lacp.settings, running.lacp.ports)
