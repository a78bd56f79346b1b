"""Records every value a set of Redis hashes takes, through keyspace notifications.

Used to prove that LAG oper status and member status never change during warm restarts: each
notification triggers a read of the hash, and every distinct value of a watched field is kept.
"""

from __future__ import annotations

import threading
import time

import redis


class KeyspaceRecorder:
    def __init__(
        self, socket_path: str, watches: dict[int, list[str]], fields: tuple[str, ...]
    ) -> None:
        """watches: db -> key patterns (e.g. {0: ["LAG_TABLE:*", "_LAG_TABLE:*"]})."""
        self.socket_path = socket_path
        self.watches = watches
        self.fields = fields
        self.history: dict[tuple[int, str], list[tuple[float, dict[str, str]]]] = {}
        self.events = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> KeyspaceRecorder:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("keyspace recorder did not subscribe")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _client(self, db: int) -> redis.Redis:
        return redis.Redis(unix_socket_path=self.socket_path, db=db, decode_responses=True)

    def _note(self, db: int, key: str, r: redis.Redis) -> None:
        vals = r.hgetall(key)
        picked = {f: vals[f] for f in self.fields if f in vals}
        hist = self.history.setdefault((db, key), [])
        if not hist or hist[-1][1] != picked:
            hist.append((time.monotonic(), picked))

    def _run(self) -> None:
        sub = self._client(0).pubsub()
        clients = {db: self._client(db) for db in self.watches}
        for db, pats in self.watches.items():
            for p in pats:
                sub.psubscribe(f"__keyspace@{db}__:{p}")
        # baseline, after subscribing so nothing between is missed
        for db, pats in self.watches.items():
            for p in pats:
                for key in clients[db].keys(p):
                    self._note(db, key, clients[db])
        self._ready.set()
        while not self._stop.is_set():
            m = sub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if m is None:
                continue
            chan = m["channel"]
            db = int(chan.split("@", 1)[1].split("__", 1)[0])
            key = chan.split(":", 1)[1]
            self.events += 1
            self._note(db, key, clients[db])

    def changed(self) -> dict[str, list[dict[str, str]]]:
        """Keys whose watched fields took more than one value."""
        return {f"{db}/{k}": [v for _, v in h] for (db, k), h in self.history.items() if len(h) > 1}
