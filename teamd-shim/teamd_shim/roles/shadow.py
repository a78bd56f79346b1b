"""The hot standby's shadow, sent and read by what changed (hld §14.7).

The active publishes its LACP state every SHADOW_EVERY_S while a hot standby follows it. Sent
whole, that cost grew with every idle LAG on both sides: at 512 LAGs x 2 the active encoded
~1.5 MB twice a second and the standby decoded and restored all of it (issue 19). Here a LAG's
entry is re-encoded only when `Lag.shadow_key()` moved (anything but clocks and counters), and
otherwise on its refresh round, one LAG in REFRESH_ROUNDS per round; its entry carries the time
and the replay cut it was taken with (`SnapshotMeta.lag_t`, `rx_cut`), so an entry of any age is
exact: the standby replays the frames after that cut. The standby reads `_meta`, then only the
entries whose time moved, and restores only those.

Pure: no Redis, no loop; `now` is an argument.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from teamd_shim.db.ownership import META
from teamd_shim.lacp import Lag
from teamd_shim.model.contract import SnapshotMeta

# every LAG is re-sent at least every REFRESH_ROUNDS shadow rounds (2 s at 0.5 s), so that the
# clocks and counters a promotion starts from are at most that old (replay.RX_KEEP_S covers it)
REFRESH_ROUNDS = 4


class ShadowWriter:
    """The active's side: the shadow hash's fields, re-encoding only what is owed."""

    def __init__(self) -> None:
        self._round = 0
        self._key: dict[str, tuple[object, ...]] = {}
        self._fields: dict[str, str] = {}
        self._lag_t: dict[str, float] = {}
        self._ports: dict[str, tuple[str, ...]] = {}
        self._cut: dict[str, int] = {}
        self.encoded = 0  # entries encoded in the last round (for the bench and the tests)

    def fields(
        self,
        lags: Mapping[str, Lag],
        rx_cut: Mapping[str, int],
        *,
        epoch: int | None,
        owner: str,
        now: float,
    ) -> dict[str, str]:
        """The whole hash as it must be after this round; entries not owed keep their string,
        so the publisher (which writes only fields that differ) sends just the owed ones."""
        self._round += 1
        for gone in self._fields.keys() - lags.keys():
            self._forget(gone)
        self.encoded = 0
        for i, (name, lag) in enumerate(lags.items()):
            key = lag.shadow_key()
            if self._key.get(name) == key and i % REFRESH_ROUNDS != self._round % REFRESH_ROUNDS:
                continue
            self.encoded += 1
            self._fields[name] = json.dumps(lag.to_dict(), separators=(",", ":"))
            self._key[name] = key
            self._lag_t[name] = now
            for port in self._ports.get(name, ()):
                self._cut.pop(port, None)
            self._ports[name] = lag.ports
            for port in lag.ports:
                if port in rx_cut:
                    self._cut[port] = rx_cut[port]
        meta = SnapshotMeta(
            epoch=epoch,
            t=now,
            final=False,
            owner=owner,
            rx_cut=dict(self._cut),
            lag_t=dict(self._lag_t),
        )
        out = dict(self._fields)
        out[META] = json.dumps(meta.to_json(), separators=(",", ":"))
        return out

    def _forget(self, name: str) -> None:
        for port in self._ports.pop(name, ()):
            self._cut.pop(port, None)
        self._fields.pop(name, None)
        self._key.pop(name, None)
        self._lag_t.pop(name, None)


class ShadowView:
    """The standby's side: the active's shadow as far as we have read it, composed entry by
    entry, each with the cut and time it was taken with (one follow thread owns it)."""

    def __init__(self) -> None:
        self.meta: SnapshotMeta | None = None
        self.lags: dict[str, dict[str, Any]] = {}
        self._lag_t: dict[str, float] = {}
        self._cut: dict[str, int] = {}

    def wanted(self, head: SnapshotMeta) -> list[str] | None:
        """The entries to read after `head` (a fresh `_meta`); None: read the whole hash (the
        first time, another owner, or a shadow of a version that does not date its entries)."""
        if self.meta is None or head.owner != self.meta.owner or not head.lag_t:
            return None
        return [lag for lag, t in head.lag_t.items() if self._lag_t.get(lag) != t]

    def merge(self, meta: SnapshotMeta, got: dict[str, dict[str, Any]], *, whole: bool) -> set[str]:
        """Take in what was read (`got`, with the `_meta` read in the same transaction);
        returns the LAGs whose entry changed."""
        if whole:
            self.lags, self._lag_t, self._cut = dict(got), dict(meta.lag_t), dict(meta.rx_cut)
            self.meta = meta
            return set(got)
        for name, d in got.items():
            self._drop_cut(name)
            self.lags[name] = d
            self._lag_t[name] = meta.lag_t.get(name, meta.t)
            for port in d.get("ports", {}):
                if port in meta.rx_cut:
                    self._cut[port] = meta.rx_cut[port]
        for gone in self.lags.keys() - meta.lag_t.keys():
            self._drop_cut(gone)
            self.lags.pop(gone)
            self._lag_t.pop(gone, None)
        self.meta = meta
        return set(got)

    def snapshot(self) -> tuple[SnapshotMeta, dict[str, dict[str, Any]]]:
        """The composed state, as one snapshot `replay.restore` takes (copies: the follow
        thread goes on merging while the loop uses it)."""
        assert self.meta is not None
        meta = replace(self.meta, rx_cut=dict(self._cut), lag_t=dict(self._lag_t))
        return meta, dict(self.lags)

    def _drop_cut(self, name: str) -> None:
        for port in self.lags.get(name, {}).get("ports", {}):
            self._cut.pop(port, None)
