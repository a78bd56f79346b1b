"""What a publisher round writes (db/publisher.py `_owed`), with no Redis: only targets that
changed are looked at, a held or refused target stays owed, a written one is settled."""

from __future__ import annotations

from pathlib import Path

from teamd_shim.db.publisher import Publisher
from teamd_shim.db.schema import appl_lag, state_lag
from teamd_shim.db.sonic_db import Endpoint


def test_only_what_changed_is_owed_and_a_held_appl_db_write_stays_owed(tmp_path: Path) -> None:
    owner: list[int | None] = [None]
    p = Publisher(Endpoint(unix_path=str(tmp_path / "never.sock")), fence=lambda: owner[0])
    p.put(state_lag("PortChannel1"), {"state": "ok"})
    p.put(appl_lag("PortChannel1"), {"oper_status": "up"})
    # not the owner: STATE_DB goes out, APPL_DB is held
    assert p._owed() == [(state_lag("PortChannel1"), {"state": "ok"})]
    p._written[state_lag("PortChannel1")] = {"state": "ok"}  # as the writer thread records it
    assert p._owed() == []
    assert p._dirty == {appl_lag("PortChannel1")}  # held, not forgotten
    owner[0] = 3
    assert p._owed() == [(appl_lag("PortChannel1"), {"oper_status": "up"})]
    p._written[appl_lag("PortChannel1")] = {"oper_status": "up"}
    assert p._owed() == [] and p._dirty == set()
    p.put(state_lag("PortChannel1"), {"state": "ok"})  # unchanged: nothing owed
    assert p._dirty == set()


def test_a_lost_connection_owes_everything_again(tmp_path: Path) -> None:
    p = Publisher(Endpoint(unix_path=str(tmp_path / "never.sock")))
    p.put(state_lag("PortChannel1"), {"state": "ok"})
    p._written[state_lag("PortChannel1")] = {"state": "ok"}
    assert p._owed() == []
    p._lost(None)
    assert p._owed() == [(state_lag("PortChannel1"), {"state": "ok"})]
