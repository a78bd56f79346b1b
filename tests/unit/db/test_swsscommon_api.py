"""The product touches only names that SONiC's real swsscommon Python module has (hld §13.8).

On a switch `from swsscommon import swsscommon` is the SWIG binding of sonic-swss-common; here
it is `swsscommon-stub`. A name that only the stub has works in every tier here and fails with
AttributeError on the first write on a switch, so the real module's names are recorded below as
data and every use is checked against them.

REAL_* were read from sonic-net/sonic-swss-common at commit
85a39d8004ad8ffb21f20bb46691e9fa08a9b6fa (2026-07-22): `pyext/swsscommon.i` (which headers it
%includes, `%rename(delete) del`, the OUTPUT typemaps that turn `get`/`hget`/`getKeys`/`pops`
into returned values, the `%template` names such as FieldValuePairs) and the public members of
`common/dbconnector.h`, `table.h`, `producerstatetable.h`, `subscriberstatetable.h`,
`consumerstatetable.h`, `select.h`, `selectable.h`, `redisselect.h`. Only the classes the
product, or the stub's product-facing classes, use are listed member by member.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from swsscommon import swsscommon as stub

ROOT = Path(__file__).resolve().parents[3]
PRODUCT = [ROOT / "teamd-shim" / "teamd_shim", ROOT / "orchestrator"]

UPSTREAM = "sonic-net/sonic-swss-common@85a39d8004ad8ffb21f20bb46691e9fa08a9b6fa"

# module-level names of the real `swsscommon.swsscommon` (a subset: the classes and templates
# from the headers swsscommon.i includes that a LAG daemon could want)
REAL_MODULE = frozenset(
    {
        "DBConnector",
        "SonicDBConfig",
        "SonicV2Connector",
        "ConfigDBConnector",
        "ConfigDBPipeConnector",
        "Table",
        "ProducerStateTable",
        "ConsumerStateTable",
        "SubscriberStateTable",
        "ProducerTable",
        "ConsumerTable",
        "Select",
        "Selectable",
        "RedisSelect",
        "RedisPipeline",
        "NotificationProducer",
        "NotificationConsumer",
        "WarmStart",
        "FieldValuePair",
        "FieldValuePairs",
        "FieldValueMap",
        "VectorString",
        "KeyOpFieldsValuesQueue",
        "CastSelectableToRedisSelectObj",
        "CastSelectableToSubscriberTableObj",
    }
)

_SELECTABLE = frozenset({"getFd", "getPri", "hasData", "hasCachedData", "initializedWithData"})
_TABLE_BASE = frozenset(
    {"getTableName", "getKeyName", "getTableNameSeparator", "getChannelName", "getTableSeparator"}
)

REAL_MEMBERS: dict[str, frozenset[str]] = {
    # dbconnector.h (`del` is `delete` in Python; `_del` is its %pythoncode alias)
    "DBConnector": frozenset(
        {
            "getDbId",
            "getDbName",
            "getNamespace",
            "namespace",
            "getDBKey",
            "setDBKey",
            "setNamespace",
            "select",
            "newConnector",
            "pubsub",
            "delete",
            "_del",
            "exists",
            "hdel",
            "hgetall",
            "keys",
            "scan",
            "set",
            "hset",
            "hmset",
            "get",
            "hget",
            "hexists",
            "incr",
            "decr",
            "rpush",
            "blpop",
            "subscribe",
            "psubscribe",
            "punsubscribe",
            "publish",
            "config_set",
            "flushdb",
            "getall",
        }
    ),
    # table.h: Table, TableBase, TableEntryEnumerable
    "Table": _TABLE_BASE
    | frozenset(
        {
            "set",
            "delete",
            "_del",
            "hset",
            "hdel",
            "get",
            "hget",
            "getKeys",
            "ttl",
            "setBuffered",
            "flush",
            "dump",
            "getContent",
        }
    ),
    "ProducerStateTable": _TABLE_BASE
    | frozenset(
        {
            "set",
            "delete",
            "setBuffered",
            "flush",
            "count",
            "clear",
            "create_temp_view",
            "apply_temp_view",
            "getKeySetName",
            "getDelKeySetName",
            "getStateHashPrefix",
        }
    ),
    "SubscriberStateTable": _TABLE_BASE
    | _SELECTABLE
    | frozenset({"pop", "pops", "getDbConnector", "readData", "updateAfterRead"}),
    "ConsumerStateTable": _TABLE_BASE
    | _SELECTABLE
    | frozenset({"pop", "pops", "getDbConnector", "readData", "getKeySetName"}),
    "Select": frozenset(
        {
            "addSelectable",
            "removeSelectable",
            "addSelectables",
            "select",
            "isQueueEmpty",
            "resultToString",
            "OBJECT",
            "ERROR",
            "TIMEOUT",
            "SIGNALINT",
        }
    ),
}

# the stub's own conveniences for labs and tests, documented in its module docstring; the
# product must never touch them
STUB_ONLY = frozenset({"from_url", "client", "stop_listen", "getDbName_of_id"})


def _product_files() -> list[Path]:
    return sorted(p for d in PRODUCT for p in d.rglob("*.py"))


def _module_aliases(tree: ast.Module) -> set[str]:
    """Names bound to modules by imports (`from teamd_shim.db import sonic_db`, ...)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out |= {a.asname or a.name for a in node.names}
    return out


def _swsscommon_uses(tree: ast.Module) -> set[str]:
    """`swsscommon.X` attribute reads, with `swsscommon` the imported binding module."""
    return {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Name)
        and n.value.id == "swsscommon"
    }


def _reexports() -> dict[str, str]:
    """sonic_db's re-exports of swsscommon classes (`Table = swsscommon.Table`)."""
    src = (ROOT / "teamd-shim/teamd_shim/db/sonic_db.py").read_text()
    out = {}
    for node in ast.parse(src).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "swsscommon"
        ):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node.value.attr
    return out


def test_every_swsscommon_name_the_product_reads_exists_in_the_real_module() -> None:
    missing = {}
    for path in _product_files():
        uses = _swsscommon_uses(ast.parse(path.read_text()))
        bad = sorted(uses - REAL_MODULE)
        if bad:
            missing[str(path.relative_to(ROOT))] = bad
    assert not missing, (
        f"names the real swsscommon ({UPSTREAM}) does not have; on a switch they raise "
        f"AttributeError: {missing}"
    )


def test_the_product_reaches_swsscommon_only_through_sonic_db() -> None:
    importers = [
        str(p.relative_to(ROOT))
        for p in _product_files()
        if "swsscommon" in _module_aliases(ast.parse(p.read_text()))
    ]
    assert importers == ["teamd-shim/teamd_shim/db/sonic_db.py"]


def test_sonic_db_reexports_only_real_classes_and_the_product_uses_no_other() -> None:
    reexports = _reexports()
    assert set(reexports.values()) <= REAL_MODULE
    for path in _product_files():
        tree = ast.parse(path.read_text())
        used = {
            n.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name)
            and n.value.id == "sonic_db"
            and n.attr[:1].isupper()
        }
        # classes and constants through sonic_db must be the re-exports
        consts = {"DEFAULT_DB_CONFIG", "DEFAULT_URL", "REDIS_ENV", "TIMEOUT_MS", "DB_IDS"}
        extra = used - set(reexports) - consts - {"Endpoint", "RedisUrlError", "SEPARATORS"}
        assert not extra, f"{path.relative_to(ROOT)}: sonic_db.{sorted(extra)} is not a re-export"


def _stub_members(cls: type) -> set[str]:
    own = set()
    for klass in inspect.getmro(cls):
        if klass.__module__ != stub.__name__:
            continue
        own |= {n for n in vars(klass) if not n.startswith("_") or n == "_del"}
    return own


def test_the_stub_classes_the_product_uses_have_nothing_the_real_ones_lack() -> None:
    """A method only the stub had would pass every tier here and break on a switch."""
    for real_name in set(_reexports().values()) - {"FieldValuePairs"}:
        extra = _stub_members(getattr(stub, real_name)) - REAL_MEMBERS[real_name] - STUB_ONLY
        assert not extra, (
            f"swsscommon-stub {real_name} has {sorted(extra)}, which the real class "
            f"({UPSTREAM}) lacks: make it private or remove it"
        )


def _attribute_reads(tree: ast.Module, modules: set[str]) -> set[str]:
    """Every `.name` read on something that is not an imported module."""
    return {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and not (isinstance(n.value, ast.Name) and n.value.id in modules)
    }


def test_the_product_touches_no_stub_only_name() -> None:
    offenders = {}
    for path in _product_files():
        tree = ast.parse(path.read_text())
        aliases = _module_aliases(tree)
        if not aliases & {"sonic_db", "swsscommon", "config_watch", "publisher"}:
            continue  # holds no swsscommon object
        hits = _attribute_reads(tree, aliases) & STUB_ONLY
        if hits:
            offenders[str(path.relative_to(ROOT))] = sorted(hits)
    assert not offenders, f"stub-only swsscommon names in the product: {offenders}"


def test_the_producer_keyspace_in_the_schema_is_the_stubs() -> None:
    """schema.producer_keys is what the fenced Lua writes; the stub's ProducerStateTable is
    what its consumer (as orchagent) pops: they must name the same keys."""
    from teamd_shim.db.schema import producer_keys

    class _Db:
        def getDbId(self) -> int:
            return 0

    t = stub.ProducerStateTable.__new__(stub.ProducerStateTable)
    t._db, t._table, t._sep = _Db(), "LAG_TABLE", ":"  # type: ignore[attr-defined,assignment]
    k = producer_keys("LAG_TABLE", "PortChannel0001")
    assert (k.key_set, k.del_set, k.channel) == (t._key_set, t._del_set, t._channel)
    assert k.pending == t._temp_key("PortChannel0001") == "_LAG_TABLE:PortChannel0001"
