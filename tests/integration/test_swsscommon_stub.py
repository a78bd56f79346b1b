"""The swsscommon stub against a real redis-server: ids, separators, key shapes and protocols.

Why these tests: on a switch, orchagent / teammgrd / sonic-utilities read what the product writes
through this API. What matters is the exact raw Redis effect, so every test checks raw keys with a
plain redis-py client in the database number SONiC uses.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
import redis

from swsscommon import swsscommon
from swsscommon.swsscommon import (
    ConfigDBConnector,
    ConsumerStateTable,
    DBConnector,
    FieldValuePairs,
    ProducerStateTable,
    Select,
    SonicDBConfig,
    SonicV2Connector,
    SubscriberStateTable,
    Table,
)
from teamd_lab.redis_server import RedisServer


@pytest.fixture(autouse=True)
def _fresh_layout():
    SonicDBConfig.reset()
    yield
    SonicDBConfig.reset()


def _drain_pubsub(ps: redis.client.PubSub, wait: float = 0.2) -> list[str]:
    """Data of every 'message' arriving on ``ps`` within ``wait`` seconds."""
    out = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        msg = ps.get_message(timeout=left)
        if msg and msg["type"] == "message":
            out.append(msg["data"])
    return out


def _subscribed(client: redis.Redis, channel: str) -> redis.client.PubSub:
    ps = client.pubsub()
    ps.subscribe(channel)
    msg = ps.get_message(timeout=2)
    assert msg is not None and msg["type"] == "subscribe"
    return ps


# ------------------------------------------------------------------------------------------
# Layout
# ------------------------------------------------------------------------------------------


def test_builtin_layout_ids_and_separators():
    expected = {
        "APPL_DB": (0, ":"),
        "ASIC_DB": (1, ":"),
        "COUNTERS_DB": (2, ":"),
        "LOGLEVEL_DB": (3, ":"),
        "CONFIG_DB": (4, "|"),
        "PFC_WD_DB": (5, ":"),
        "FLEX_COUNTER_DB": (5, ":"),
        "STATE_DB": (6, "|"),
        "SNMP_OVERLAY_DB": (7, "|"),
        "RESTAPI_DB": (8, "|"),
        "GB_ASIC_DB": (9, ":"),
        "GB_COUNTERS_DB": (10, ":"),
        "GB_FLEX_COUNTER_DB": (11, ":"),
        "CHASSIS_APP_DB": (12, "|"),
        "CHASSIS_STATE_DB": (13, "|"),
        "APPL_STATE_DB": (14, ":"),
    }
    for name, (dbid, sep) in expected.items():
        assert SonicDBConfig.getDbId(name) == dbid, name
        assert SonicDBConfig.getSeparator(name) == sep, name
    assert SonicDBConfig.getSeparator(6) == "|"
    assert SonicDBConfig.getSeparator(0) == ":"
    with pytest.raises(RuntimeError):
        SonicDBConfig.getDbId("NO_SUCH_DB")


def _write_config(path: Path, srv: RedisServer) -> Path:
    cfg = {
        "INSTANCES": {
            "redis": {
                "hostname": "127.0.0.1",
                "port": 1,  # nothing listens there: proves the unix socket is what gets used
                "unix_socket_path": str(srv.socket_path),
                "persistence_for_warm_boot": "yes",
            }
        },
        "DATABASES": {
            "APPL_DB": {"id": 0, "separator": ":", "instance": "redis"},
            "CONFIG_DB": {"id": 4, "separator": "|", "instance": "redis"},
            "STATE_DB": {"id": 6, "separator": "|", "instance": "redis"},
        },
        "VERSION": "1.0",
    }
    path.write_text(json.dumps(cfg))
    return path


def test_sonicdbconfig_from_file(redis_server, tmp_path):
    cfg = _write_config(tmp_path / "database_config.json", redis_server)
    assert not SonicDBConfig.isInit()
    SonicDBConfig.initialize(str(cfg))
    assert SonicDBConfig.isInit()
    assert SonicDBConfig.getDbId("STATE_DB") == 6
    assert SonicDBConfig.getSeparator("STATE_DB") == "|"
    assert SonicDBConfig.getDbSock("STATE_DB") == str(redis_server.socket_path)
    assert SonicDBConfig.getDbHostname("STATE_DB") == "127.0.0.1"
    assert SonicDBConfig.getDbPort("STATE_DB") == 1
    assert sorted(SonicDBConfig.getDbList()) == ["APPL_DB", "CONFIG_DB", "STATE_DB"]

    # DBConnector by name defaults to the instance's unix socket (as the C++ one).
    db = DBConnector("STATE_DB", 1000)
    assert db.getDbId() == 6 and db.getDbName() == "STATE_DB"
    Table(db, "LAG_TABLE").set("PortChannel0001", [("state", "ok")])
    assert redis_server.client(6).hgetall("LAG_TABLE|PortChannel0001") == {"state": "ok"}

    # SonicV2Connector with use_unix_socket_path=True follows the file too.
    v2 = SonicV2Connector(use_unix_socket_path=True)
    v2.connect(v2.STATE_DB)
    assert v2.get(v2.STATE_DB, "LAG_TABLE|PortChannel0001", "state") == "ok"
    v2.close()

    # ... while TCP (the Python default) goes to port 1, where nothing listens.
    with pytest.raises(redis.exceptions.ConnectionError):
        SonicV2Connector().connect("STATE_DB")

    with pytest.raises(RuntimeError):
        SonicDBConfig.initialize(str(tmp_path / "missing.json"))


def test_dbconnector_constructors(redis_server, tmp_path):
    db = DBConnector(4, str(redis_server.socket_path), 500)
    assert db.getDbId() == 4 and db.getDbName() == "CONFIG_DB"
    db.hset("PORTCHANNEL|PortChannel0001", "mtu", "9100")
    assert db.hget("PORTCHANNEL|PortChannel0001", "mtu") == "9100"
    assert db.hgetall("PORTCHANNEL|PortChannel0001") == {"mtu": "9100"}
    assert db.keys("PORTCHANNEL|*") == ["PORTCHANNEL|PortChannel0001"]
    assert db.exists("PORTCHANNEL|PortChannel0001")
    assert db.hdel("PORTCHANNEL|PortChannel0001", "mtu") == 1
    assert not db.exists("PORTCHANNEL|PortChannel0001")
    assert db.set("plain", "1") and db.get("plain") == "1"
    assert db.delete("plain") == 1 and db.get("plain") is None
    db.set("plain", "2")
    assert db._del("plain") == 1 and db._del("plain") == 0
    assert db.publish("chan", "x") == 0
    assert redis_server.client(4).keys("*") == []

    # Host/port form against a second server that listens on TCP.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tcp = RedisServer(tmp_path / "tcp", port=port).start()
    try:
        db = DBConnector(6, "127.0.0.1", port, 500)
        db.hset("LAG_TABLE|PortChannel0001", "state", "ok")
        assert tcp.client(6).hget("LAG_TABLE|PortChannel0001", "state") == "ok"
        via_url = DBConnector.from_url("STATE_DB", f"redis://127.0.0.1:{port}")
        assert via_url.getDbId() == 6
        assert via_url.hget("LAG_TABLE|PortChannel0001", "state") == "ok"
    finally:
        tcp.stop()


# ------------------------------------------------------------------------------------------
# Table
# ------------------------------------------------------------------------------------------


def test_table_key_shapes_and_ops(redis_server):
    state = DBConnector.from_url("STATE_DB", redis_server.url)
    raw6 = redis_server.client(6)
    t = Table(state, "LAG_TABLE")
    t.set("PortChannel0001", FieldValuePairs([("state", "ok"), ("mtu", "9100")]))
    t.set("PortChannel0001", [("oper_status", "up")])  # merge
    assert raw6.hgetall("LAG_TABLE|PortChannel0001") == {
        "state": "ok",
        "mtu": "9100",
        "oper_status": "up",
    }
    found, fvs = t.get("PortChannel0001")
    assert found and dict(fvs) == {"state": "ok", "mtu": "9100", "oper_status": "up"}
    assert isinstance(fvs, tuple) and all(isinstance(p, tuple) for p in fvs)
    assert t.get("PortChannel0002") == (False, ())
    assert t.hget("PortChannel0001", "mtu") == (True, "9100")
    assert t.hget("PortChannel0001", "nope") == (False, "")
    t.hset("PortChannel0001", "mtu", "1500")
    t.hdel("PortChannel0001", "oper_status")
    assert raw6.hgetall("LAG_TABLE|PortChannel0001") == {"state": "ok", "mtu": "1500"}

    members = Table(state, "LAG_MEMBER_TABLE")
    members.set("PortChannel0001|Ethernet0", [("status", "enabled")])
    assert raw6.exists("LAG_MEMBER_TABLE|PortChannel0001|Ethernet0")
    assert t.getKeys() == ["PortChannel0001"]  # LAG_MEMBER_TABLE is another table
    assert members.getKeys() == ["PortChannel0001|Ethernet0"]
    t.delete("PortChannel0001")
    members._del("PortChannel0001|Ethernet0")
    assert raw6.keys("*") == []

    appl = Table(DBConnector.from_url("APPL_DB", redis_server.url), "LAG_TABLE")
    appl.set("PortChannel0001", [("admin_status", "up")])
    assert redis_server.client(0).keys("*") == ["LAG_TABLE:PortChannel0001"]
    assert appl.getTableNameSeparator() == ":"


# ------------------------------------------------------------------------------------------
# ProducerStateTable / ConsumerStateTable
# ------------------------------------------------------------------------------------------


def test_producer_set_wire_protocol(redis_server):
    appl = DBConnector.from_url("APPL_DB", redis_server.url)
    raw = redis_server.client(0)
    ps = _subscribed(raw, "LAG_TABLE_CHANNEL@0")
    pst = ProducerStateTable(appl, "LAG_TABLE")

    pst.set("PortChannel0001", FieldValuePairs([("admin_status", "up"), ("mtu", "9100")]))
    assert raw.smembers("LAG_TABLE_KEY_SET") == {"PortChannel0001"}
    assert raw.hgetall("_LAG_TABLE:PortChannel0001") == {"admin_status": "up", "mtu": "9100"}
    assert not raw.exists("LAG_TABLE:PortChannel0001")
    assert _drain_pubsub(ps) == ["G"]

    # Key still pending: fields merge into the temp hash, and no second wake-up.
    pst.set("PortChannel0001", [("oper_status", "up")])
    assert _drain_pubsub(ps) == []
    assert raw.hgetall("_LAG_TABLE:PortChannel0001") == {
        "admin_status": "up",
        "mtu": "9100",
        "oper_status": "up",
    }
    assert pst.count() == 1

    # The consumer (orchagent's side) moves it into LAG_TABLE:PortChannel0001.
    cst = ConsumerStateTable(appl, "LAG_TABLE")
    assert cst.hasData()
    items = cst.pops()
    assert items == [
        (
            "PortChannel0001",
            "SET",
            (("admin_status", "up"), ("mtu", "9100"), ("oper_status", "up")),
        )
    ]
    assert raw.hgetall("LAG_TABLE:PortChannel0001") == {
        "admin_status": "up",
        "mtu": "9100",
        "oper_status": "up",
    }
    assert not raw.exists("_LAG_TABLE:PortChannel0001")
    assert not raw.exists("LAG_TABLE_KEY_SET")
    assert cst.pops() == []

    # Newly added again -> published again; HSET merges into the consumed hash.
    pst.set("PortChannel0001", {"mtu": "1500"})
    assert _drain_pubsub(ps) == ["G"]
    assert cst.pops() == [("PortChannel0001", "SET", (("mtu", "1500"),))]
    assert raw.hgetall("LAG_TABLE:PortChannel0001")["mtu"] == "1500"
    ps.close()


def test_producer_delete_wire_protocol(redis_server):
    appl = DBConnector.from_url("APPL_DB", redis_server.url)
    raw = redis_server.client(0)
    pst = ProducerStateTable(appl, "LAG_MEMBER_TABLE")
    cst = ConsumerStateTable(appl, "LAG_MEMBER_TABLE")
    key = "PortChannel0001:Ethernet0"
    pst.set(key, [("status", "enabled")])
    cst.pops()
    assert raw.hgetall("LAG_MEMBER_TABLE:PortChannel0001:Ethernet0") == {"status": "enabled"}

    ps = _subscribed(raw, "LAG_MEMBER_TABLE_CHANNEL@0")
    pst.delete(key)
    assert raw.smembers("LAG_MEMBER_TABLE_KEY_SET") == {key}
    assert raw.smembers("LAG_MEMBER_TABLE_DEL_SET") == {key}
    assert not raw.exists("_LAG_MEMBER_TABLE:" + key)
    assert _drain_pubsub(ps) == ["G"]
    pst.delete(key)  # already pending: no new wake-up
    assert _drain_pubsub(ps) == []

    assert cst.pops() == [(key, "DEL", ())]
    assert raw.keys("*") == []

    # DEL then SET before the consumer runs: the old fields are dropped, the new ones applied.
    pst.set(key, [("status", "enabled"), ("x", "1")])
    cst.pops()
    pst.delete(key)
    pst.set(key, [("status", "disabled")])
    assert _drain_pubsub(ps) == ["G", "G"]
    assert cst.pops() == [(key, "SET", (("status", "disabled"),))]
    assert raw.hgetall("LAG_MEMBER_TABLE:" + key) == {"status": "disabled"}
    assert raw.keys("*") == ["LAG_MEMBER_TABLE:" + key]
    ps.close()


def test_consumer_is_selectable(redis_server):
    appl = DBConnector.from_url("APPL_DB", redis_server.url)
    cst = ConsumerStateTable(appl, "LAG_TABLE")
    sel = Select()
    sel.addSelectable(cst)
    assert sel.select(50) == (Select.TIMEOUT, None)
    ProducerStateTable(appl, "LAG_TABLE").set("PortChannel0001", [("mtu", "9100")])
    state, obj = sel.select(1000)
    assert state == Select.OBJECT and obj is cst
    assert [k for k, _, _ in cst.pops()] == ["PortChannel0001"]
    assert sel.select(50) == (Select.TIMEOUT, None)


# ------------------------------------------------------------------------------------------
# ConfigDBConnector
# ------------------------------------------------------------------------------------------


def test_configdb_entries(redis_server):
    cfg = ConfigDBConnector(url=redis_server.url)
    cfg.connect(wait_for_init=False)
    raw4 = redis_server.client(4)

    cfg.set_entry("PORTCHANNEL", "PortChannel0001", {"admin_status": "up", "mtu": "9100"})
    assert raw4.hgetall("PORTCHANNEL|PortChannel0001") == {"admin_status": "up", "mtu": "9100"}
    # Replace semantics: fields not given are removed.
    cfg.set_entry("PORTCHANNEL", "PortChannel0001", {"admin_status": "down", "min_links": "1"})
    assert raw4.hgetall("PORTCHANNEL|PortChannel0001") == {
        "admin_status": "down",
        "min_links": "1",
    }
    # Merge semantics.
    cfg.mod_entry("PORTCHANNEL", "PortChannel0001", {"mtu": "9100"})
    assert cfg.get_entry("PORTCHANNEL", "PortChannel0001") == {
        "admin_status": "down",
        "min_links": "1",
        "mtu": "9100",
    }

    # Tuple keys are joined with '|', and come back as tuples.
    cfg.set_entry("PORTCHANNEL_MEMBER", ("PortChannel0001", "Ethernet0"), {})
    cfg.set_entry("PORTCHANNEL_MEMBER", ("PortChannel0001", "Ethernet4"), {})
    assert raw4.hgetall("PORTCHANNEL_MEMBER|PortChannel0001|Ethernet0") == {"NULL": "NULL"}
    assert cfg.get_table("PORTCHANNEL_MEMBER") == {
        ("PortChannel0001", "Ethernet0"): {},
        ("PortChannel0001", "Ethernet4"): {},
    }
    assert cfg.get_entry("PORTCHANNEL_MEMBER", ("PortChannel0001", "Ethernet0")) == {}
    assert sorted(cfg.get_keys("PORTCHANNEL_MEMBER")) == [
        ("PortChannel0001", "Ethernet0"),
        ("PortChannel0001", "Ethernet4"),
    ]

    # List fields: 'name@' with comma-joined values.
    cfg.mod_entry("PORTCHANNEL", "PortChannel0002", {"members": ["Ethernet8", "Ethernet12"]})
    assert raw4.hgetall("PORTCHANNEL|PortChannel0002") == {"members@": "Ethernet8,Ethernet12"}
    assert cfg.get_entry("PORTCHANNEL", "PortChannel0002") == {
        "members": ["Ethernet8", "Ethernet12"]
    }
    assert set(cfg.get_table("PORTCHANNEL")) == {"PortChannel0001", "PortChannel0002"}

    # None deletes.
    cfg.set_entry("PORTCHANNEL", "PortChannel0002", None)
    cfg.mod_entry("PORTCHANNEL_MEMBER", ("PortChannel0001", "Ethernet4"), None)
    assert not raw4.exists("PORTCHANNEL|PortChannel0002")
    assert not raw4.exists("PORTCHANNEL_MEMBER|PortChannel0001|Ethernet4")
    assert cfg.get_entry("PORTCHANNEL", "PortChannel0002") == {}

    cfg.mod_config({"WARM_RESTART": {"teamd": {"teamsyncd_timer": "70"}}})
    assert raw4.hgetall("WARM_RESTART|teamd") == {"teamsyncd_timer": "70"}
    conf = cfg.get_config()
    assert conf["WARM_RESTART"] == {"teamd": {"teamsyncd_timer": "70"}}
    assert conf["PORTCHANNEL_MEMBER"] == {("PortChannel0001", "Ethernet0"): {}}
    cfg.mod_config({"PORTCHANNEL_MEMBER": None})
    assert raw4.keys("PORTCHANNEL_MEMBER|*") == []

    # db_connect switches the working db and its separator.
    cfg.db_connect("APPL_DB")
    assert cfg.KEY_SEPARATOR == ":"
    cfg.mod_entry("LAG_TABLE", "PortChannel0001", {"mtu": "9100"})
    assert redis_server.client(0).hgetall("LAG_TABLE:PortChannel0001") == {"mtu": "9100"}


def test_configdb_wait_for_init(redis_server):
    done = threading.Event()

    def run() -> None:
        ConfigDBConnector(url=redis_server.url).connect()  # wait_for_init=True
        done.set()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    assert not done.wait(0.3)
    redis_server.client(4).set("CONFIG_DB_INITIALIZED", "1")
    assert done.wait(2.0)
    # Already initialised: returns at once.
    t0 = time.monotonic()
    ConfigDBConnector(url=redis_server.url).connect()
    assert time.monotonic() - t0 < 0.5


def test_configdb_listen(redis_server):
    cfg = ConfigDBConnector(url=redis_server.url)
    cfg.connect(wait_for_init=False)
    cfg.set_entry("PORTCHANNEL", "PortChannel0001", {"mtu": "9100"})
    seen: list[tuple[str, str, object]] = []
    cfg.subscribe("PORTCHANNEL", lambda t, k, d: seen.append((t, k, d)), fire_init_data=True)
    th = threading.Thread(target=cfg.listen, daemon=True)
    th.start()
    writer = ConfigDBConnector(url=redis_server.url)
    writer.connect(wait_for_init=False)
    deadline = time.monotonic() + 2
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.mod_entry("PORTCHANNEL", "PortChannel0002", {"mtu": "1500"})
    while len(seen) < 2 and time.monotonic() < deadline:  # listen re-reads the hash
        time.sleep(0.01)
    writer.set_entry("PORTCHANNEL", "PortChannel0002", None)
    writer.mod_entry("OTHER", "x", {"a": "b"})
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    cfg.stop_listen()
    th.join(2)
    assert not th.is_alive()
    assert seen == [
        ("PORTCHANNEL", "PortChannel0001", {"mtu": "9100"}),
        ("PORTCHANNEL", "PortChannel0002", {"mtu": "1500"}),
        ("PORTCHANNEL", "PortChannel0002", None),
    ]


# ------------------------------------------------------------------------------------------
# SubscriberStateTable + Select
# ------------------------------------------------------------------------------------------


def test_subscriber_state_table_events(redis_server):
    raw6 = redis_server.client(6)
    raw6.hset("LAG_TABLE|PortChannel0001", mapping={"state": "ok"})
    raw6.hset("LAG_MEMBER_TABLE|PortChannel0001|Ethernet0", mapping={"status": "enabled"})
    state = DBConnector.from_url("STATE_DB", redis_server.url)
    sst = SubscriberStateTable(state, "LAG_TABLE")
    sel = Select()
    sel.addSelectable(sst)

    # Initial data.
    assert sel.select(1000) == (Select.OBJECT, sst)
    assert sst.pops() == [("PortChannel0001", "SET", (("state", "ok"),))]
    t0 = time.monotonic()
    assert sel.select(100) == (Select.TIMEOUT, None)
    assert 0.09 <= time.monotonic() - t0 < 0.5

    # A write in another thread wakes select promptly.
    written: list[float] = []

    def write() -> None:
        time.sleep(0.1)
        written.append(time.monotonic())
        raw6.hset("LAG_TABLE|PortChannel0002", mapping={"state": "ok", "mtu": "9100"})

    th = threading.Thread(target=write)
    th.start()
    state_, obj = sel.select(2000)
    woke = time.monotonic()
    th.join()
    assert (state_, obj) == (Select.OBJECT, sst)
    assert woke - written[0] < 0.05
    key, op, fvs = sst.pop()
    assert (key, op, dict(fvs)) == ("PortChannel0002", "SET", {"state": "ok", "mtu": "9100"})
    assert sst.pop() == ("", "", ())

    # Field changes report the whole hash; removing the key reports DEL without fields.
    # (Each change is awaited before the next: a change is reported by re-reading the hash.)
    def next_event() -> tuple:
        assert sel.select(1000) == (Select.OBJECT, sst)
        return sst.pop()

    raw6.hset("LAG_TABLE|PortChannel0002", "mtu", "1500")
    assert next_event() == ("PortChannel0002", "SET", (("state", "ok"), ("mtu", "1500")))
    raw6.hdel("LAG_TABLE|PortChannel0002", "state")
    assert next_event() == ("PortChannel0002", "SET", (("mtu", "1500"),))
    raw6.hset("LAG_MEMBER_TABLE|PortChannel0001|Ethernet4", "status", "enabled")  # other table
    raw6.delete("LAG_TABLE|PortChannel0002")
    assert next_event() == ("PortChannel0002", "DEL", ())
    # Removing the last field: the hdel finds the hash gone, the following del reports it.
    raw6.hset("LAG_TABLE|PortChannel0003", "state", "ok")
    assert next_event() == ("PortChannel0003", "SET", (("state", "ok"),))
    raw6.hdel("LAG_TABLE|PortChannel0003", "state")
    assert next_event() == ("PortChannel0003", "DEL", ())
    assert sel.select(50) == (Select.TIMEOUT, None)
    assert not sst.hasData()


def test_subscriber_appl_db_ignores_producer_internals(redis_server):
    appl = DBConnector.from_url("APPL_DB", redis_server.url)
    sst = SubscriberStateTable(appl, "LAG_TABLE")
    other = SubscriberStateTable(appl, "LAG_MEMBER_TABLE")
    sel = Select()
    sel.addSelectables([sst, other])
    ProducerStateTable(appl, "LAG_TABLE").set("PortChannel0001", [("mtu", "9100")])
    # Only _LAG_TABLE:* and the sets changed: nothing under LAG_TABLE:* yet.
    assert sel.select(100) == (Select.TIMEOUT, None)
    ConsumerStateTable(appl, "LAG_TABLE").pops()
    assert sel.select(1000) == (Select.OBJECT, sst)
    assert sst.pops() == [("PortChannel0001", "SET", (("mtu", "9100"),))]
    sel.removeSelectable(sst)
    Table(appl, "LAG_TABLE").set("PortChannel0001", [("mtu", "1500")])
    assert sel.select(100) == (Select.TIMEOUT, None)
    Table(appl, "LAG_MEMBER_TABLE").set("PortChannel0001:Ethernet0", [("status", "enabled")])
    assert sel.select(1000) == (Select.OBJECT, other)
    assert other.pops() == [("PortChannel0001:Ethernet0", "SET", (("status", "enabled"),))]


# ------------------------------------------------------------------------------------------
# SonicV2Connector
# ------------------------------------------------------------------------------------------


def test_sonic_v2_connector(redis_server):
    v2 = SonicV2Connector(url=redis_server.url)
    assert v2.STATE_DB == "STATE_DB" and v2.APPL_DB == "APPL_DB" and v2.CONFIG_DB == "CONFIG_DB"
    v2.connect(v2.STATE_DB)
    assert v2.get_db_separator(v2.STATE_DB) == "|"
    assert v2.get_dbid(v2.STATE_DB) == 6
    v2.set(v2.STATE_DB, "WARM_RESTART_TABLE|teamsyncd", "restore_count", 1)
    v2.hmset(v2.STATE_DB, "WARM_RESTART_TABLE|teamsyncd", {"state": "initialized"})
    assert redis_server.client(6).hgetall("WARM_RESTART_TABLE|teamsyncd") == {
        "restore_count": "1",
        "state": "initialized",
    }
    assert v2.get(v2.STATE_DB, "WARM_RESTART_TABLE|teamsyncd", "state") == "initialized"
    assert v2.get(v2.STATE_DB, "WARM_RESTART_TABLE|teamsyncd", "nope") is None
    assert v2.get_all(v2.STATE_DB, "WARM_RESTART_TABLE|teamsyncd")["restore_count"] == "1"
    assert v2.keys(v2.STATE_DB, "WARM_RESTART_TABLE|*") == ["WARM_RESTART_TABLE|teamsyncd"]
    assert v2.exists(v2.STATE_DB, "WARM_RESTART_TABLE|teamsyncd")
    client = v2.get_redis_client(v2.STATE_DB)
    assert client.hget("WARM_RESTART_TABLE|teamsyncd", "state") == "initialized"
    assert v2.publish(v2.STATE_DB, "chan", "x") == 0
    assert v2.delete(v2.STATE_DB, "WARM_RESTART_TABLE|teamsyncd") == 1
    assert not v2.exists(v2.STATE_DB, "WARM_RESTART_TABLE|teamsyncd")
    v2.close(v2.STATE_DB)
    with pytest.raises(RuntimeError):
        v2.get_redis_client(v2.STATE_DB)


# ------------------------------------------------------------------------------------------
# Failure behaviour: prompt, unwrapped redis errors, no hidden retries
# ------------------------------------------------------------------------------------------


def test_stopped_server_raises_connection_error_promptly(redis_server):
    appl = DBConnector.from_url("APPL_DB", redis_server.url, 1000)
    assert appl.client.get_retry().get_retries() == 0
    pst = ProducerStateTable(appl, "LAG_TABLE")
    pst.set("PortChannel0001", [("mtu", "9100")])  # pooled connection now open
    state = DBConnector.from_url("STATE_DB", redis_server.url, 1000)
    sst = SubscriberStateTable(state, "LAG_TABLE")
    sel = Select()
    sel.addSelectable(sst)
    v2 = SonicV2Connector(url=redis_server.url)
    v2.connect(v2.STATE_DB)
    redis_server.stop()

    checks = [
        lambda: pst.set("PortChannel0001", [("mtu", "1500")]),
        lambda: appl.hget("x", "y"),
        lambda: Table(state, "LAG_TABLE").get("PortChannel0001"),
        lambda: sel.select(5000),
        lambda: v2.get(v2.STATE_DB, "x", "y"),
        lambda: SonicV2Connector(url=redis_server.url).connect("STATE_DB"),
        lambda: ConfigDBConnector(url=redis_server.url).connect(wait_for_init=False),
    ]
    for check in checks:
        t0 = time.monotonic()
        with pytest.raises(redis.exceptions.ConnectionError):
            check()
        assert time.monotonic() - t0 < 3.0


def test_unresponsive_server_times_out_from_timeout_ms():
    # A listening socket that never answers: the read must give up after timeout_ms.
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        db = DBConnector(0, "127.0.0.1", port, 300)
        t0 = time.monotonic()
        with pytest.raises(redis.exceptions.TimeoutError):
            db.hget("x", "y")
        assert time.monotonic() - t0 < 1.5


def test_module_import_shapes():
    # The product imports both ways; both must give the same classes.
    assert swsscommon.DBConnector is DBConnector
    assert Select.OBJECT == 0 and Select.ERROR == 1 and Select.TIMEOUT == 2
    fvs = FieldValuePairs([("a", 1), ("b", "2")])
    assert list(fvs) == [("a", "1"), ("b", "2")] and isinstance(fvs, list)
