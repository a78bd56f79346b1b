"""The final snapshot of a yield cannot be overwritten by a shadow snapshot (issue 10).

The active publishes shadow snapshots through its publisher thread (asynchronous), and writes
the final one directly at the yield. A shadow put queued just before the yield used to land in
the same key after the final one and turn `_meta.final` back to false, so the takeover read
"has not yielded" and the run rolled back. Real redis-server, real Publisher, real OwnerStore.
"""

from __future__ import annotations

import json
import time

import pytest

from teamd_shim.db import sonic_db
from teamd_shim.db.ownership import OwnerStore
from teamd_shim.db.publisher import Publisher, Target
from teamd_shim.model.contract import SnapshotMeta

pytestmark = pytest.mark.integration


def test_a_queued_shadow_snapshot_never_overwrites_the_final_one(redis_server) -> None:
    endpoint = sonic_db.resolve(redis_server.url)
    store = OwnerStore(endpoint)
    name = "teamd"
    publisher = Publisher(endpoint)
    shadow = {
        "PortChannel0001": json.dumps({"shadow": True}),
        "_meta": json.dumps({"epoch": 1, "t": 1.0, "final": False, "owner": name, "rx_cut": {}}),
    }
    publisher.put(Target("STATE_DB", "TEAMD_SHIM_STATE", name), shadow)  # queued ...
    store.write_final(
        name,
        {"PortChannel0001": {"final": True}},
        SnapshotMeta(epoch=1, t=2.0, final=True, owner=name),
    )
    publisher.start()  # ... and written after the final snapshot
    try:
        deadline = time.monotonic() + 5.0
        while (head := store.read_meta(name)) is None or head.t != 1.0:
            assert time.monotonic() < deadline, "the queued shadow was never written"
            time.sleep(0.01)
    finally:
        publisher.stop()
    meta, lags = store.read_final(name)  # what a takeover reads
    assert meta is not None and meta.final is True and meta.t == 2.0
    assert lags == {"PortChannel0001": {"final": True}}
    store.drop_instance(name)
    assert store.read_final(name) == (None, {}) and store.read_snapshot(name) == (None, {})
