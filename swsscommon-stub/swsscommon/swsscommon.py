"""The subset of SONiC's ``swsscommon.swsscommon`` that teamd-hitless uses, over redis-py.

Why: the product has to be wire-compatible with a real SONiC switch (orchagent, teammgrd,
sonic-utilities and friends read what we write), but it is developed and tested on hosts where
the SWIG binding of sonic-swss-common is not installed. This module reproduces the *observable*
behaviour of the real classes -- database ids, key separators, key shapes, the
ProducerStateTable / ConsumerStateTable Lua protocol, keyspace-notification driven
SubscriberStateTable, ConfigDBConnector's NULL placeholder and ``field@`` lists -- so that code
written against it runs unchanged against the real library, and data it writes is what the real
daemons expect.

Connection policy (differs from the real library on purpose, documented here because callers
rely on it):

* Every redis-py client is created with redis-py's own retries DISABLED
  (``retry=Retry(NoBackoff(), 0)``), ``decode_responses=True`` and a socket (connect and read)
  timeout of ``timeout_ms`` milliseconds, or 2 s when ``timeout_ms`` is 0. The product has exactly
  one retry layer of its own; a second, hidden one inside the client would multiply delays and
  hide outages. Errors therefore surface promptly and unwrapped as
  ``redis.exceptions.ConnectionError`` / ``redis.exceptions.TimeoutError`` -- from plain
  commands, from the Lua scripts, and from ``Select.select`` / ``pop`` on subscriptions.
* ``retry_on`` arguments of ``connect`` are accepted for API compatibility and ignored for the
  same reason.
* The layout (db ids, separators, instances) comes from ``database_config.json`` (SONiC's
  shape: ``INSTANCES`` / ``DATABASES`` / ``VERSION``), loaded by ``SonicDBConfig.initialize`` or
  lazily from ``/var/run/redis/sonic-db/database_config.json`` when that file exists; otherwise a
  built-in copy of SONiC's default layout is used with every database on TCP 127.0.0.1:6379.
* Stub-only additions (absent from the real library, never needed on a switch, and never used
  by the product: ``tests/unit/db/test_swsscommon_api.py`` checks both against the real
  module's names): ``DBConnector.from_url``, the ``url=`` keyword of ``SonicV2Connector`` /
  ``ConfigDBConnector``, ``DBConnector.client`` (the raw redis-py client),
  ``SonicDBConfig.getDbName(db_id)`` and ``ConfigDBConnector.stop_listen``. Helpers the real
  classes lack are private (``DBConnector._ping`` / ``_close``, ``Selectable._close``).
* Known shape difference: ``pops()`` returns a list of (key, op, fvs) here; the real binding
  returns three lists (keys, ops, fvss). The product ignores the result.

Left out: multi-ASIC namespaces (a non-empty namespace raises ``NotImplementedError``),
RedisPipeline / buffered tables, temp views, ``SelectableTimer`` / ``SelectableEvent``,
NotificationProducer/Consumer, and every class the product does not use.
"""

from __future__ import annotations

import json
import os
import select as _select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast, overload
from urllib.parse import unquote, urlparse

import redis
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.retry import Retry

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

__all__ = [
    "DEFAULT_SONIC_DB_CONFIG_FILE",
    "ConfigDBConnector",
    "ConsumerStateTable",
    "DBConnector",
    "FieldValuePairs",
    "ProducerStateTable",
    "Select",
    "Selectable",
    "SonicDBConfig",
    "SonicV2Connector",
    "SubscriberStateTable",
    "Table",
]

DEFAULT_SONIC_DB_CONFIG_FILE = "/var/run/redis/sonic-db/database_config.json"
DEFAULT_TIMEOUT_MS = 2000
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6379

# SONiC's default layout (sonic-buildimage dockers/docker-database/database_config.json.j2),
# minus the optional DPU/EVENT/BMP databases. unix_socket_path is empty on purpose: without a
# config file there is no reason to believe /var/run/redis/redis.sock exists, so everything goes
# to TCP 127.0.0.1:6379.
_BUILTIN_DATABASES: tuple[tuple[str, int, str], ...] = (
    ("APPL_DB", 0, ":"),
    ("ASIC_DB", 1, ":"),
    ("COUNTERS_DB", 2, ":"),
    ("LOGLEVEL_DB", 3, ":"),
    ("CONFIG_DB", 4, "|"),
    ("PFC_WD_DB", 5, ":"),
    ("FLEX_COUNTER_DB", 5, ":"),
    ("STATE_DB", 6, "|"),
    ("SNMP_OVERLAY_DB", 7, "|"),
    ("RESTAPI_DB", 8, "|"),
    ("GB_ASIC_DB", 9, ":"),
    ("GB_COUNTERS_DB", 10, ":"),
    ("GB_FLEX_COUNTER_DB", 11, ":"),
    ("CHASSIS_APP_DB", 12, "|"),
    ("CHASSIS_STATE_DB", 13, "|"),
    ("APPL_STATE_DB", 14, ":"),
)


def _builtin_layout() -> dict[str, Any]:
    return {
        "INSTANCES": {
            "redis": {
                "hostname": DEFAULT_HOST,
                "port": DEFAULT_PORT,
                "unix_socket_path": "",
                "persistence_for_warm_boot": "yes",
            }
        },
        "DATABASES": {
            name: {"id": dbid, "separator": sep, "instance": "redis"}
            for name, dbid, sep in _BUILTIN_DATABASES
        },
        "VERSION": "1.0",
    }


_BUILTIN_LAYOUT = _builtin_layout()


def _check_namespace(namespace: str) -> None:
    if namespace:
        raise NotImplementedError(
            f"swsscommon stub: multi-ASIC namespaces are not supported (got {namespace!r})"
        )


def _glob_escape(text: str) -> str:
    """Escape Redis glob metacharacters so a table name matches only itself."""
    out = []
    for ch in text:
        if ch in "*?[]\\":
            out.append("\\")
        out.append(ch)
    return "".join(out)


# --------------------------------------------------------------------------------------------
# SonicDBConfig
# --------------------------------------------------------------------------------------------


class SonicDBConfig:
    """Database layout: names -> id, separator and redis instance.

    Mirrors the static C++ class. Why lazily: real daemons call ``initialize()`` once at start;
    tools that never do still get the on-box layout through the default path, and hosts
    without one get SONiC's default layout instead of an exception.
    """

    _lock = threading.RLock()
    _layout: dict[str, Any] | None = None
    _init: bool = False
    _path: str | None = None

    @staticmethod
    def initialize(file: str = DEFAULT_SONIC_DB_CONFIG_FILE) -> None:
        """Load ``file``. A missing default file selects the built-in layout instead."""
        with SonicDBConfig._lock:
            if not os.path.exists(file):
                if file == DEFAULT_SONIC_DB_CONFIG_FILE:
                    SonicDBConfig._layout = _BUILTIN_LAYOUT
                    SonicDBConfig._init = True
                    SonicDBConfig._path = None
                    return
                raise RuntimeError(f"Sonic database config file doesn't exist at {file}")
            with open(file, encoding="utf-8") as fh:
                data = json.load(fh)
            if not isinstance(data, dict) or "DATABASES" not in data or "INSTANCES" not in data:
                raise RuntimeError(f"{file}: not a SONiC database_config.json")
            SonicDBConfig._layout = data
            SonicDBConfig._init = True
            SonicDBConfig._path = file

    @staticmethod
    def isInit() -> bool:
        return SonicDBConfig._init

    @staticmethod
    def isGlobalInit() -> bool:
        return False

    @staticmethod
    def reset() -> None:
        """Forget any loaded layout (the next lookup loads the default again)."""
        with SonicDBConfig._lock:
            SonicDBConfig._layout = None
            SonicDBConfig._init = False
            SonicDBConfig._path = None

    @staticmethod
    def _get() -> dict[str, Any]:
        with SonicDBConfig._lock:
            if SonicDBConfig._layout is None:
                if os.path.exists(DEFAULT_SONIC_DB_CONFIG_FILE):
                    SonicDBConfig.initialize(DEFAULT_SONIC_DB_CONFIG_FILE)
                else:
                    # Not marked initialised: the on-box file may still appear later.
                    return _BUILTIN_LAYOUT
            assert SonicDBConfig._layout is not None
            return SonicDBConfig._layout

    @staticmethod
    def _db(db_name: str, netns: str = "") -> dict[str, Any]:
        _check_namespace(netns)
        dbs = SonicDBConfig._get()["DATABASES"]
        if db_name not in dbs:
            raise RuntimeError(f"{db_name} is not a valid DB name in the database config")
        info: dict[str, Any] = dbs[db_name]
        return info

    @staticmethod
    def getDbList(netns: str = "") -> list[str]:
        _check_namespace(netns)
        return list(SonicDBConfig._get()["DATABASES"])

    @staticmethod
    def getDbId(db_name: str, netns: str = "") -> int:
        return int(SonicDBConfig._db(db_name, netns)["id"])

    @staticmethod
    def getSeparator(db: str | int | DBConnector, netns: str = "") -> str:
        """Separator by db name, by db id, or of a DBConnector (as the C++ overloads)."""
        if isinstance(db, DBConnector):
            if db.getDbName():
                return SonicDBConfig.getSeparator(db.getDbName(), db.getNamespace())
            return SonicDBConfig.getSeparator(db.getDbId(), db.getNamespace())
        if isinstance(db, int):
            name = SonicDBConfig.getDbName(db, netns)
            if name is None:
                return ":"
            db = name
        return str(SonicDBConfig._db(db, netns)["separator"])

    @staticmethod
    def getDbName(db_id: int, netns: str = "") -> str | None:
        """First database name with id ``db_id`` (stub helper; ids 5 are shared)."""
        _check_namespace(netns)
        for name, info in SonicDBConfig._get()["DATABASES"].items():
            if int(info["id"]) == db_id:
                return str(name)
        return None

    @staticmethod
    def getDbInst(db_name: str, netns: str = "") -> dict[str, Any]:
        inst_name = SonicDBConfig._db(db_name, netns)["instance"]
        insts = SonicDBConfig._get()["INSTANCES"]
        if inst_name not in insts:
            raise RuntimeError(f"{db_name}: instance {inst_name} missing from database config")
        return dict(insts[inst_name])

    @staticmethod
    def getDbSock(db_name: str, netns: str = "") -> str:
        return str(SonicDBConfig.getDbInst(db_name, netns).get("unix_socket_path", ""))

    @staticmethod
    def getDbHostname(db_name: str, netns: str = "") -> str:
        return str(SonicDBConfig.getDbInst(db_name, netns).get("hostname", DEFAULT_HOST))

    @staticmethod
    def getDbPort(db_name: str, netns: str = "") -> int:
        return int(SonicDBConfig.getDbInst(db_name, netns).get("port", DEFAULT_PORT))


# --------------------------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------------------------


def _client_kwargs(db_id: int, timeout_ms: int) -> dict[str, Any]:
    timeout = (timeout_ms if timeout_ms and timeout_ms > 0 else DEFAULT_TIMEOUT_MS) / 1000.0
    return {
        "db": db_id,
        "decode_responses": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }


def _client_from_url(db_id: int, url: str, timeout_ms: int) -> redis.Redis:
    parsed = urlparse(url)
    kwargs = _client_kwargs(db_id, timeout_ms)
    if parsed.username:
        kwargs["username"] = unquote(parsed.username)
    if parsed.password:
        kwargs["password"] = unquote(parsed.password)
    if parsed.scheme == "unix":
        if not parsed.path:
            raise ValueError(f"unix URL without a path: {url!r}")
        return redis.Redis(unix_socket_path=unquote(parsed.path), **kwargs)
    if parsed.scheme == "redis":
        return redis.Redis(
            host=parsed.hostname or DEFAULT_HOST, port=parsed.port or DEFAULT_PORT, **kwargs
        )
    raise ValueError(f"unsupported URL {url!r}: use unix:///path/redis.sock or redis://host:port")


# Every client is made with decode_responses=True (``_client_kwargs``), so every reply is a str;
# redis-py types replies as ``bytes | str`` because its types cannot see that. These helpers
# narrow the type once, here; each is exactly the redis-py call it wraps.
def _hgetall(client: redis.Redis, name: str) -> dict[str, str]:
    return cast("dict[str, str]", client.hgetall(name))


def _hget(client: redis.Redis, name: str, key: str) -> str | None:
    return cast("str | None", client.hget(name, key))


def _get(client: redis.Redis, name: str) -> str | None:
    return cast("str | None", client.get(name))


def _keys(client: redis.Redis, pattern: str) -> list[str]:
    return cast("list[str]", client.keys(pattern))


def _fields(mapping: Mapping[str, str]) -> Mapping[FieldT, EncodableT]:
    """A str -> str mapping as hset's ``mapping=`` (whose key type is invariant)."""
    return cast("Mapping[FieldT, EncodableT]", mapping)


FieldValueTuple = tuple[str, str]


class FieldValuePairs(list[FieldValueTuple]):
    """A list of ``(field, value)`` string pairs, like SWIG's ``vector<pair<string,string>>``."""

    def __init__(self, items: Iterable[tuple[Any, Any]] | Mapping[Any, Any] = ()) -> None:
        super().__init__(_fvs_list(items))


def _fvs_list(fvs: Iterable[tuple[Any, Any]] | Mapping[Any, Any]) -> list[FieldValueTuple]:
    """Normalise FieldValuePairs / list of tuples / mapping to a list of (str, str)."""
    if isinstance(fvs, Mapping):
        return [(str(f), str(v)) for f, v in fvs.items()]
    out: list[FieldValueTuple] = []
    for item in fvs:
        f, v = item
        out.append((str(f), str(v)))
    return out


class DBConnector:
    """One Redis database on one connection target (mirrors ``swss::DBConnector``).

    Constructors, as the SWIG overloads:
    ``DBConnector(db_name, timeout_ms, is_tcp=False, namespace="")`` (layout lookup; unix socket
    unless ``is_tcp`` or the instance has none), ``DBConnector(db_id, unix_path, timeout_ms)``,
    ``DBConnector(db_id, host, port, timeout_ms)``. Stub-only: ``DBConnector.from_url``.
    """

    @overload
    def __init__(
        self, db: str, timeout_ms: int, is_tcp: bool = False, namespace: str = ""
    ) -> None: ...

    @overload
    def __init__(self, db: int, unix_path: str, timeout_ms: int) -> None: ...

    @overload
    def __init__(self, db: int, host: str, port: int, timeout_ms: int) -> None: ...

    def __init__(self, db: str | int, *args: Any, **kwargs: Any) -> None:
        if isinstance(db, str):
            self._init_by_name(db, *args, **kwargs)
        elif isinstance(db, int):
            if kwargs:
                raise TypeError("DBConnector(db_id, ...) takes positional arguments only")
            if len(args) == 2:
                unix_path, timeout_ms = args
                self._setup(
                    db,
                    SonicDBConfig.getDbName(db) or "",
                    "",
                    int(timeout_ms),
                    {"unix_socket_path": str(unix_path)},
                )
            elif len(args) == 3:
                host, port, timeout_ms = args
                self._setup(
                    db,
                    SonicDBConfig.getDbName(db) or "",
                    "",
                    int(timeout_ms),
                    {"host": str(host), "port": int(port)},
                )
            else:
                raise TypeError(
                    "DBConnector(db_id, unix_path, timeout_ms) or "
                    "DBConnector(db_id, host, port, timeout_ms)"
                )
        else:
            raise TypeError(f"DBConnector: db must be a name or an id, not {type(db).__name__}")

    def _init_by_name(
        self, db_name: str, timeout_ms: int = 0, is_tcp: bool = False, namespace: str = ""
    ) -> None:
        _check_namespace(namespace)
        db_id = SonicDBConfig.getDbId(db_name, namespace)
        sock = SonicDBConfig.getDbSock(db_name, namespace)
        if sock and not is_tcp:
            target: dict[str, Any] = {"unix_socket_path": sock}
        else:
            target = {
                "host": SonicDBConfig.getDbHostname(db_name, namespace),
                "port": SonicDBConfig.getDbPort(db_name, namespace),
            }
        self._setup(db_id, db_name, namespace, int(timeout_ms), target)

    def _setup(
        self,
        db_id: int,
        db_name: str,
        namespace: str,
        timeout_ms: int,
        target: dict[str, Any] | None,
        client: redis.Redis | None = None,
        url: str | None = None,
    ) -> None:
        self._db_id = db_id
        self._db_name = db_name
        self._namespace = namespace
        self._timeout_ms = timeout_ms
        self._target = target
        self._url = url
        if client is None:
            assert target is not None
            client = redis.Redis(**target, **_client_kwargs(db_id, timeout_ms))
        self._client = client

    @classmethod
    def from_url(cls, db: str | int, url: str, timeout_ms: int = 0) -> DBConnector:
        """STUB-ONLY. Connect database ``db`` (name or id) at ``url``.

        ``url`` is ``unix:///path/redis.sock`` or ``redis://[user:pass@]host:port``; the db
        number always comes from the layout (a path/db in the URL is ignored). Why: tests and
        the lab run a private redis-server that no database_config.json describes.
        """
        if isinstance(db, str):
            db_id, db_name = SonicDBConfig.getDbId(db), db
        else:
            db_id, db_name = int(db), SonicDBConfig.getDbName(int(db)) or ""
        self = cls.__new__(cls)
        self._setup(
            db_id, db_name, "", timeout_ms, None, _client_from_url(db_id, url, timeout_ms), url
        )
        return self

    def newConnector(self, timeout_ms: int) -> DBConnector:
        """A fresh connector (own connection pool) to the same database."""
        new = type(self).__new__(type(self))
        if self._url is not None:
            client = _client_from_url(self._db_id, self._url, timeout_ms)
        else:
            assert self._target is not None
            client = redis.Redis(**self._target, **_client_kwargs(self._db_id, timeout_ms))
        new._setup(
            self._db_id,
            self._db_name,
            self._namespace,
            timeout_ms,
            self._target,
            client,
            self._url,
        )
        return new

    # -- identity --------------------------------------------------------------------------
    @property
    def client(self) -> redis.Redis:
        """STUB-ONLY. The underlying redis-py client (retries disabled, decoded responses)."""
        return self._client

    def getDbId(self) -> int:
        return self._db_id

    def getDbName(self) -> str:
        return self._db_name

    def getNamespace(self) -> str:
        return self._namespace

    def _close(self) -> None:
        """Not in the real DBConnector (it closes when collected); SonicV2Connector.close."""
        self._client.close()

    # -- raw commands (as swss::DBConnector) -------------------------------------------------
    def _ping(self) -> bool:
        """Not in the real DBConnector; what SonicV2Connector.connect proves a connection by."""
        return bool(self._client.ping())

    def hset(self, key: str, field: str, value: str) -> None:
        self._client.hset(key, field, value)

    def hmset(self, key: str, fvs: Iterable[tuple[Any, Any]] | Mapping[Any, Any]) -> None:
        pairs = _fvs_list(fvs)
        if pairs:
            self._client.hset(key, mapping=dict(pairs))

    def hget(self, key: str, field: str) -> str | None:
        return _hget(self._client, key, field)

    def hgetall(self, key: str) -> dict[str, str]:
        return _hgetall(self._client, key)

    def hexists(self, key: str, field: str) -> bool:
        return bool(self._client.hexists(key, field))

    def hdel(self, key: str, fields: str | Iterable[str]) -> int:
        names = [fields] if isinstance(fields, str) else list(fields)
        if not names:
            return 0
        return int(self._client.hdel(key, *names))

    def keys(self, pattern: str) -> list[str]:
        return list(_keys(self._client, pattern))

    def exists(self, key: str) -> bool:
        return bool(self._client.exists(key))

    def delete(self, key: str) -> int:
        return int(self._client.delete(key))

    _del = delete  # the real binding's alias (dbconnector.h %pythoncode)

    def set(self, key: str, value: str) -> bool:
        return bool(self._client.set(key, value))

    def get(self, key: str) -> str | None:
        return _get(self._client, key)

    def publish(self, channel: str, message: str) -> int:
        return int(self._client.publish(channel, message))

    def flushdb(self) -> bool:
        return bool(self._client.flushdb())

    def pubsub(self) -> PubSub:
        """A redis-py PubSub on this database (the real one returns swss::PubSub)."""
        ps: PubSub = self._client.pubsub()
        return ps


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


class _TableBase:
    def __init__(self, db: DBConnector, table_name: str) -> None:
        if not isinstance(db, DBConnector):
            raise TypeError("the stub's tables take a DBConnector (no RedisPipeline support)")
        self._db = db
        self._table = table_name
        self._sep = SonicDBConfig.getSeparator(db)

    def getTableName(self) -> str:
        return self._table

    def getTableNameSeparator(self) -> str:
        return self._sep

    def getKeyName(self, key: str) -> str:
        return f"{self._table}{self._sep}{key}"


class Table(_TableBase):
    """Plain hashes ``<TABLE><sep><key>`` (CONFIG_DB, STATE_DB, reading APPL_DB)."""

    def get(self, key: str) -> tuple[bool, tuple[FieldValueTuple, ...]]:
        data = _hgetall(self._db.client, self.getKeyName(key))
        if not data:
            return False, ()
        return True, tuple(data.items())

    def hget(self, key: str, field: str) -> tuple[bool, str]:
        value = _hget(self._db.client, self.getKeyName(key), field)
        if value is None:
            return False, ""
        return True, value

    def set(
        self,
        key: str,
        fvs: Iterable[tuple[Any, Any]] | Mapping[Any, Any],
        op: str = "",
        prefix: str = "",
    ) -> None:
        """HSET merge, as swss::Table::set (no-op for an empty list)."""
        pairs = _fvs_list(fvs)
        if pairs:
            self._db.client.hset(self.getKeyName(key), mapping=dict(pairs))

    def hset(self, key: str, field: str, value: str, op: str = "", prefix: str = "") -> None:
        self._db.client.hset(self.getKeyName(key), field, value)

    def hdel(self, key: str, field: str, op: str = "", prefix: str = "") -> None:
        self._db.client.hdel(self.getKeyName(key), field)

    def delete(self, key: str, op: str = "", prefix: str = "") -> None:
        self._db.client.delete(self.getKeyName(key))

    _del = delete

    def getKeys(self) -> list[str]:
        prefix = f"{self._table}{self._sep}"
        keys = _keys(self._db.client, _glob_escape(prefix) + "*")
        return [k[len(prefix) :] for k in keys]


# Producer side: one atomic script each, exactly the effects of sonic-swss-common's
# producerstatetable.cpp scripts.
# SET: KEYS = {channel, key_set, temp_hash}, ARGV = {"G", key, f1, v1, f2, v2, ...}
_PRODUCER_SET_LUA = """
local added = redis.call('SADD', KEYS[2], ARGV[2])
for i = 3, #ARGV, 2 do
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
if added > 0 then
    redis.call('PUBLISH', KEYS[1], ARGV[1])
end
return added
"""

# DEL: KEYS = {channel, key_set, temp_hash, del_set}, ARGV = {"G", key}
_PRODUCER_DEL_LUA = """
local added = redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('DEL', KEYS[3])
if added > 0 then
    redis.call('PUBLISH', KEYS[1], ARGV[1])
end
return added
"""

# Consumer pops (consumer_state_table_pops.lua):
# KEYS = {key_set, "<TABLE><sep>", del_set}, ARGV = {batch, "_"}
_CONSUMER_POPS_LUA = """
local ret = {}
local tablename = KEYS[2]
local stateprefix = ARGV[2]
local keys = redis.call('SPOP', KEYS[1], ARGV[1])
for i = 1, #keys do
    local key = keys[i]
    local num = redis.call('SREM', KEYS[3], key)
    if num == 1 then
        redis.call('DEL', tablename .. key)
    end
    local fieldvalues = redis.call('HGETALL', stateprefix .. tablename .. key)
    table.insert(ret, {key, fieldvalues})
    for j = 1, #fieldvalues, 2 do
        redis.call('HSET', tablename .. key, fieldvalues[j], fieldvalues[j + 1])
    end
    redis.call('DEL', stateprefix .. tablename .. key)
end
return ret
"""

_STATE_PREFIX = "_"


class _StateTableNames(_TableBase):
    @property
    def _key_set(self) -> str:
        return f"{self._table}_KEY_SET"

    @property
    def _del_set(self) -> str:
        return f"{self._table}_DEL_SET"

    @property
    def _channel(self) -> str:
        return f"{self._table}_CHANNEL@{self._db.getDbId()}"

    def _temp_key(self, key: str) -> str:
        return _STATE_PREFIX + self.getKeyName(key)


class ProducerStateTable(_StateTableNames):
    """Writer for APPL_DB tables consumed by orchagent (``swss::ProducerStateTable``).

    Why a script: orchagent only sees changes that go through ``<T>_KEY_SET`` plus the
    ``_<T>:<key>`` temp hash and the ``<T>_CHANNEL@<dbid>`` wake-up; a direct HSET of
    ``<T>:<key>`` is invisible to it. Each call is one atomic EVALSHA.
    """

    def __init__(self, db: DBConnector, table_name: str, buffered: bool = False) -> None:
        super().__init__(db, table_name)
        self._set_script = db.client.register_script(_PRODUCER_SET_LUA)
        self._del_script = db.client.register_script(_PRODUCER_DEL_LUA)

    def set(
        self,
        key: str,
        fvs: Iterable[tuple[Any, Any]] | Mapping[Any, Any],
        op: str = "SET",
        prefix: str = _STATE_PREFIX,
    ) -> None:
        args: list[str] = ["G", key]
        for f, v in _fvs_list(fvs):
            args += [f, v]
        self._set_script(keys=[self._channel, self._key_set, self._temp_key(key)], args=args)

    def delete(self, key: str, op: str = "DEL", prefix: str = _STATE_PREFIX) -> None:
        self._del_script(
            keys=[self._channel, self._key_set, self._temp_key(key), self._del_set],
            args=["G", key],
        )

    def flush(self) -> None:
        """Nothing is buffered in the stub."""

    def setBuffered(self, buffered: bool) -> None:
        """Accepted for compatibility; the stub never buffers."""

    def count(self) -> int:
        """Keys pending for the consumer (SCARD of the key set)."""
        return int(self._db.client.scard(self._key_set))


KeyOpFieldsValues = tuple[str, str, tuple[FieldValueTuple, ...]]


# --------------------------------------------------------------------------------------------
# Selectables
# --------------------------------------------------------------------------------------------


class Selectable:
    """Something ``Select`` can wait on: a pubsub socket plus a local event buffer."""

    _pubsub: PubSub

    def __init__(self, pri: int = 0) -> None:
        self._pri = pri

    def getPri(self) -> int:
        return self._pri

    def getFd(self) -> int:
        conn = self._pubsub.connection
        sock = getattr(conn, "_sock", None) if conn is not None else None
        return sock.fileno() if sock is not None else -1

    def _on_message(self, msg: dict[str, Any]) -> None:
        raise NotImplementedError

    def _drain(self) -> None:
        """Consume every message already readable, without blocking."""
        while True:
            msg = self._pubsub.get_message(timeout=0.0)
            if msg is None:
                return
            if msg.get("type") in ("message", "pmessage"):
                self._on_message(msg)

    def hasData(self) -> bool:
        raise NotImplementedError

    def hasCachedData(self) -> bool:
        return self.hasData()

    def getDbConnector(self) -> DBConnector:
        """ConsumerTableBase / RedisSelect have it; Table and ProducerStateTable do not."""
        db: DBConnector = getattr(self, "_db")  # noqa: B009 -- set by the table half
        return db

    def _close(self) -> None:
        """Not in the real Selectable (it unsubscribes when collected); tests release early."""
        self._pubsub.close()

    def _wait_subscribed(self, kind: str) -> None:
        """Wait for the (p)subscribe confirmation so nothing written afterwards is missed."""
        conn = self._pubsub.connection
        timeout = conn.socket_timeout if conn is not None and conn.socket_timeout else 2.0
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise redis.exceptions.TimeoutError(f"no {kind} confirmation from redis")
            msg = self._pubsub.get_message(timeout=left)
            if msg is None:
                continue
            if msg.get("type") == kind:
                return
            if msg.get("type") in ("message", "pmessage"):
                self._on_message(msg)


class ConsumerStateTable(_StateTableNames, Selectable):
    """Minimal reader of the producer protocol (as orchagent's ``swss::ConsumerStateTable``).

    Used by tests to check the producer side end to end. Selectable: woken by the
    ``<T>_CHANNEL@<dbid>`` publish, and initially ready if the key set is non-empty.
    """

    def __init__(
        self, db: DBConnector, table_name: str, popBatchSize: int = 128, pri: int = 0
    ) -> None:
        _StateTableNames.__init__(self, db, table_name)
        Selectable.__init__(self, pri)
        self._batch = popBatchSize
        self._pops_script = db.client.register_script(_CONSUMER_POPS_LUA)
        self._pubsub = db.client.pubsub()
        self._pubsub.subscribe(self._channel)
        self._wait_subscribed("subscribe")
        self._pending = bool(db.client.scard(self._key_set))

    def _on_message(self, msg: dict[str, Any]) -> None:
        self._pending = True

    def hasData(self) -> bool:
        self._drain()
        return self._pending

    def pops(self, prefix: str = "") -> list[KeyOpFieldsValues]:
        self._drain()
        raw = self._pops_script(
            keys=[self._key_set, f"{self._table}{self._sep}", self._del_set],
            args=[self._batch, _STATE_PREFIX],
        )
        out: list[KeyOpFieldsValues] = []
        for key, flat in raw:
            fvs = tuple(zip(flat[0::2], flat[1::2], strict=True))
            out.append((key, "SET" if fvs else "DEL", fvs))
        # More may remain beyond one batch; stay ready until a short batch drains the set.
        self._pending = len(raw) >= self._batch
        return out

    def pop(self, prefix: str = "") -> KeyOpFieldsValues:
        """One entry, or ``("", "", ())`` when nothing is pending (pops a batch of one)."""
        saved, self._batch = self._batch, 1
        try:
            items = self.pops(prefix)
        finally:
            self._batch = saved
        if items:
            self._pending = bool(self._db.client.scard(self._key_set))
            return items[0]
        return "", "", ()


# Keyspace operations after which a hash is re-read and reported as SET.
_REMOVAL_OPS = frozenset({"del", "expired", "evicted", "rename_from"})


class SubscriberStateTable(_TableBase, Selectable):
    """Keyspace-notification change feed of a plain-hash table (``swss::SubscriberStateTable``).

    On construction it subscribes to ``__keyspace@<id>__:<TABLE><sep>*`` and then queues every
    existing key as a SET (as the real class does), so callers see initial state and changes
    through one path. A change re-reads the whole hash and yields SET with all fields; removal
    of the key yields DEL with no fields. Keys are returned without the table prefix.
    """

    def __init__(
        self, db: DBConnector, table_name: str, popBatchSize: int = 128, pri: int = 0
    ) -> None:
        _TableBase.__init__(self, db, table_name)
        Selectable.__init__(self, pri)
        self._batch = popBatchSize
        self._prefix = f"{table_name}{self._sep}"
        self._buffer: deque[KeyOpFieldsValues] = deque()
        self._pubsub = db.client.pubsub()
        self._pattern = f"__keyspace@{db.getDbId()}__:{_glob_escape(self._prefix)}*"
        self._pubsub.psubscribe(self._pattern)
        self._wait_subscribed("psubscribe")
        client = db.client
        for full in _keys(client, _glob_escape(self._prefix) + "*"):
            try:
                data = _hgetall(client, full)
            except redis.exceptions.ResponseError:
                continue  # not a hash
            if data:
                self._buffer.append((full[len(self._prefix) :], "SET", tuple(data.items())))

    def _on_message(self, msg: dict[str, Any]) -> None:
        channel: str = msg["channel"]
        op: str = msg["data"]
        full = channel.split(":", 1)[1]
        if not full.startswith(self._prefix):
            return
        key = full[len(self._prefix) :]
        if op in _REMOVAL_OPS:
            self._buffer.append((key, "DEL", ()))
            return
        try:
            data = _hgetall(self._db.client, full)
        except redis.exceptions.ResponseError:
            return  # not a hash (wrong type): nothing a SubscriberStateTable reports
        if data:
            self._buffer.append((key, "SET", tuple(data.items())))
        # else: already gone; the 'del' notification that follows reports it.

    def hasData(self) -> bool:
        self._drain()
        return bool(self._buffer)

    def hasCachedData(self) -> bool:
        return bool(self._buffer)

    def pop(self, prefix: str = "") -> KeyOpFieldsValues:
        """Next event, or ``("", "", ())`` when there is none."""
        self._drain()
        if self._buffer:
            return self._buffer.popleft()
        return "", "", ()

    def pops(self, prefix: str = "") -> list[KeyOpFieldsValues]:
        """Up to ``popBatchSize`` queued events, oldest first."""
        self._drain()
        out: list[KeyOpFieldsValues] = []
        while self._buffer and len(out) < self._batch:
            out.append(self._buffer.popleft())
        return out


class Select:
    """Wait on several selectables (``swss::Select``).

    Implementation: drain every selectable's socket without blocking; if none has data, wait in
    ``poll()`` on their pubsub sockets for the remaining time. No busy loop; latency is that of
    the socket wake-up. Redis errors propagate unwrapped (see module docstring).
    """

    OBJECT = 0
    ERROR = 1
    TIMEOUT = 2

    def __init__(self) -> None:
        self._selectables: list[Selectable] = []
        self._next = 0

    def addSelectable(self, selectable: Selectable) -> None:
        if selectable not in self._selectables:
            self._selectables.append(selectable)

    def addSelectables(self, selectables: Iterable[Selectable]) -> None:
        for s in selectables:
            self.addSelectable(s)

    def removeSelectable(self, selectable: Selectable) -> None:
        if selectable in self._selectables:
            self._selectables.remove(selectable)

    def isQueueEmpty(self) -> bool:
        return not any(s.hasCachedData() for s in self._selectables)

    def _ready(self) -> Selectable | None:
        items = self._selectables
        if not items:
            return None
        # Highest priority first, round-robin among equals so one busy table can't starve others.
        order = sorted(
            range(len(items)),
            key=lambda i: (-items[i].getPri(), (i - self._next) % len(items)),
        )
        for i in order:
            if items[i].hasData():
                self._next = (i + 1) % len(items)
                return items[i]
        return None

    def select(
        self, timeout_ms: int = -1, interrupt_on_signal: bool = False
    ) -> tuple[int, Selectable | None]:
        """``(Select.OBJECT, selectable)`` when one has data, ``(Select.TIMEOUT, None)``.

        ``timeout_ms < 0`` waits forever.
        """
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000.0
        while True:
            ready = self._ready()
            if ready is not None:
                return Select.OBJECT, ready
            if deadline is None:
                wait_ms: int | None = None
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return Select.TIMEOUT, None
                wait_ms = max(1, int(left * 1000 + 0.999))
            poller = _select.poll()
            for s in self._selectables:
                fd = s.getFd()
                if fd >= 0:
                    poller.register(fd, _select.POLLIN | _select.POLLPRI)
            if not self._selectables:
                time.sleep((wait_ms or 1000) / 1000.0)
                continue
            try:
                poller.poll(wait_ms)
            except InterruptedError:
                if interrupt_on_signal:
                    return Select.ERROR, None


# --------------------------------------------------------------------------------------------
# SonicV2Connector / ConfigDBConnector
# --------------------------------------------------------------------------------------------


class SonicV2Connector:
    """Multi-database helper of SONiC tools (``swsscommon.SonicV2Connector``).

    Defaults to TCP like the real one; ``use_unix_socket_path=True`` uses the instance's unix
    socket when the layout has one. STUB-ONLY ``url=``: every database is opened at that URL
    (``unix:///path`` or ``redis://host:port``), db numbers from the layout.
    """

    def __init__(
        self,
        use_unix_socket_path: bool = False,
        namespace: str = "",
        url: str | None = None,
        **kwargs: Any,
    ) -> None:
        _check_namespace(namespace)
        if kwargs.get("decode_responses", True) is not True:
            raise ValueError("decode_responses must be True")
        self.use_unix_socket_path = use_unix_socket_path
        self.namespace = namespace
        self._url = url
        self._conns: dict[str, DBConnector] = {}
        for name in SonicDBConfig.getDbList():
            setattr(self, name, name)

    def _open(self, db_name: str) -> DBConnector:
        if self._url is not None:
            return DBConnector.from_url(db_name, self._url)
        return DBConnector(db_name, 0, not self.use_unix_socket_path, self.namespace)

    def connect(self, db_name: str, retry_on: bool = True) -> None:
        """Open and ping ``db_name``. ``retry_on`` is ignored: no hidden retries here."""
        conn = self._open(db_name)
        conn._ping()
        old = self._conns.pop(db_name, None)
        if old is not None:
            old._close()
        self._conns[db_name] = conn

    def close(self, db_name: str | None = None) -> None:
        names = [db_name] if db_name is not None else list(self._conns)
        for name in names:
            conn = self._conns.pop(name, None)
            if conn is not None:
                conn._close()

    def get_db_list(self) -> list[str]:
        return SonicDBConfig.getDbList(self.namespace)

    def get_dbid(self, db_name: str) -> int:
        return SonicDBConfig.getDbId(db_name, self.namespace)

    def get_db_separator(self, db_name: str) -> str:
        return SonicDBConfig.getSeparator(db_name, self.namespace)

    def get_redis_client(self, db_name: str) -> DBConnector:
        """The connected DBConnector of ``db_name`` (raw hget/hset/...; ``.client`` is redis-py)."""
        try:
            return self._conns[db_name]
        except KeyError:
            raise RuntimeError(f"{db_name} is not connected: call connect() first") from None

    def _c(self, db_name: str) -> redis.Redis:
        return self.get_redis_client(db_name).client

    def keys(self, db_name: str, pattern: str = "*", blocking: bool = False) -> list[str]:
        return list(_keys(self._c(db_name), pattern))

    def get(self, db_name: str, _hash: str, key: str, blocking: bool = False) -> str | None:
        return _hget(self._c(db_name), _hash, key)

    def hexists(self, db_name: str, _hash: str, key: str) -> bool:
        return bool(self._c(db_name).hexists(_hash, key))

    def get_all(self, db_name: str, _hash: str, blocking: bool = False) -> dict[str, str]:
        return _hgetall(self._c(db_name), _hash)

    def set(self, db_name: str, _hash: str, key: str, val: Any, blocking: bool = False) -> int:
        return int(self._c(db_name).hset(_hash, key, str(val)))

    def hmset(self, db_name: str, key: str, values: Mapping[str, Any]) -> None:
        if values:
            self._c(db_name).hset(key, mapping={k: str(v) for k, v in values.items()})

    def exists(self, db_name: str, key: str) -> bool:
        return bool(self._c(db_name).exists(key))

    def delete(self, db_name: str, key: str, blocking: bool = False) -> int:
        return int(self._c(db_name).delete(key))

    def delete_all_by_pattern(self, db_name: str, pattern: str) -> None:
        client = self._c(db_name)
        for key in client.keys(pattern):
            client.delete(key)

    def publish(self, db_name: str, channel: str, message: str) -> int:
        return int(self._c(db_name).publish(channel, message))


TypedValue = str | list[str]
TypedEntry = dict[str, TypedValue]
TableKey = str | tuple[str, ...]


class ConfigDBConnector(SonicV2Connector):
    """Typed access to CONFIG_DB-style tables (``swsscommon.ConfigDBConnector``).

    Entries are plain hashes ``<TABLE>|<key>``; tuple keys are joined with the separator; a field
    ``name@`` holds a comma-joined list; an empty entry is stored as ``NULL``=``NULL`` and that
    placeholder is hidden on read.
    """

    INIT_INDICATOR = "CONFIG_DB_INITIALIZED"

    def __init__(
        self,
        use_unix_socket_path: bool = False,
        namespace: str = "",
        url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(use_unix_socket_path, namespace, url, **kwargs)
        self.db_name = "CONFIG_DB"
        self.KEY_SEPARATOR = self.TABLE_NAME_SEPARATOR = "|"
        self.handlers: dict[str, Callable[[str, str, TypedEntry | None], Any]] = {}
        self.fire_init_data: dict[str, bool] = {}
        self._listen_stop = threading.Event()

    # -- connection --------------------------------------------------------------------------
    def connect(self, wait_for_init: bool = True, retry_on: bool = False) -> None:  # type: ignore[override]
        self.db_connect("CONFIG_DB", wait_for_init, retry_on)

    def db_connect(self, db_name: str, wait_for_init: bool = False, retry_on: bool = False) -> None:
        """Connect ``db_name`` as the working db; optionally block until CONFIG_DB_INITIALIZED.

        The indicator is the plain string key ``CONFIG_DB_INITIALIZED`` (config-setup sets it
        to "1"); any non-empty value counts, as in the real connector.
        """
        self.db_name = db_name
        self.KEY_SEPARATOR = self.TABLE_NAME_SEPARATOR = self.get_db_separator(db_name)
        SonicV2Connector.connect(self, db_name, retry_on)
        if wait_for_init:
            self._wait_for_init()

    def _initialized(self) -> bool:
        client = self._c(self.db_name)
        try:
            return bool(client.get(self.INIT_INDICATOR))
        except redis.exceptions.ResponseError:  # someone made it a hash
            return bool(client.hgetall(self.INIT_INDICATOR))

    def _wait_for_init(self) -> None:
        if self._initialized():
            return
        pubsub = self._c(self.db_name).pubsub()
        try:
            pubsub.psubscribe(f"__keyspace@{self.get_dbid(self.db_name)}__:{self.INIT_INDICATOR}")
            while not self._initialized():
                pubsub.get_message(timeout=1.0)
        finally:
            pubsub.close()

    # -- key/value conversions (public in the real class) -------------------------------------
    def serialize_key(self, key: TableKey) -> str:
        if isinstance(key, tuple):
            return self.KEY_SEPARATOR.join(str(k) for k in key)
        return str(key)

    def deserialize_key(self, key: str) -> TableKey:
        tokens = key.split(self.KEY_SEPARATOR)
        return tuple(tokens) if len(tokens) > 1 else key

    @staticmethod
    def typed_to_raw(typed: Mapping[str, Any] | None) -> dict[str, str]:
        if typed is None:
            return {}
        if len(typed) == 0:
            return {"NULL": "NULL"}
        raw: dict[str, str] = {}
        for k, v in typed.items():
            if isinstance(v, list):
                raw[k + "@"] = ",".join(str(x) for x in v)
            else:
                raw[str(k)] = str(v)
        return raw

    @staticmethod
    def raw_to_typed(raw: Mapping[str, str] | None) -> TypedEntry | None:
        if raw is None:
            return None
        typed: TypedEntry = {}
        for k, v in raw.items():
            if k == "NULL":
                continue
            if k.endswith("@"):
                typed[k[:-1]] = v.split(",") if v else []
            else:
                typed[k] = v
        return typed

    def _hash(self, table: str, key: TableKey) -> str:
        return f"{table}{self.TABLE_NAME_SEPARATOR}{self.serialize_key(key)}"

    # -- entries -----------------------------------------------------------------------------
    def set_entry(self, table: str, key: TableKey, data: Mapping[str, Any] | None) -> None:
        """Replace the entry: afterwards the hash holds exactly ``data`` (None deletes it)."""
        client = self._c(self.db_name)
        name = self._hash(table, key)
        if data is None:
            client.delete(name)
            return
        raw = self.typed_to_raw(data)
        stale = [f for f in client.hkeys(name) if f not in raw]
        pipe = client.pipeline(transaction=True)
        pipe.hset(name, mapping=_fields(raw))
        if stale:
            pipe.hdel(name, *stale)
        pipe.execute()

    def mod_entry(self, table: str, key: TableKey, data: Mapping[str, Any] | None) -> None:
        """Merge ``data`` into the entry (None deletes it)."""
        client = self._c(self.db_name)
        name = self._hash(table, key)
        if data is None:
            client.delete(name)
            return
        client.hset(name, mapping=_fields(self.typed_to_raw(data)))

    def get_entry(self, table: str, key: TableKey) -> TypedEntry:
        raw = _hgetall(self._c(self.db_name), self._hash(table, key))
        return self.raw_to_typed(raw) or {}

    def get_keys(self, table: str, split: bool = True) -> list[TableKey]:
        prefix = f"{table}{self.TABLE_NAME_SEPARATOR}"
        out: list[TableKey] = []
        for full in _keys(self._c(self.db_name), _glob_escape(prefix) + "*"):
            row = full[len(prefix) :]
            out.append(self.deserialize_key(row) if split else row)
        return out

    def get_table(self, table: str) -> dict[TableKey, TypedEntry]:
        client = self._c(self.db_name)
        prefix = f"{table}{self.TABLE_NAME_SEPARATOR}"
        out: dict[TableKey, TypedEntry] = {}
        for full in _keys(client, _glob_escape(prefix) + "*"):
            entry = self.raw_to_typed(_hgetall(client, full))
            if entry is not None:
                out[self.deserialize_key(full[len(prefix) :])] = entry
        return out

    def delete_table(self, table: str) -> None:
        client = self._c(self.db_name)
        for full in client.keys(_glob_escape(f"{table}{self.TABLE_NAME_SEPARATOR}") + "*"):
            client.delete(full)

    def mod_config(self, data: Mapping[str, Mapping[TableKey, Any] | None]) -> None:
        for table, entries in data.items():
            if entries is None:
                self.delete_table(table)
                continue
            for key, entry in entries.items():
                self.mod_entry(table, key, entry)

    def get_config(self) -> dict[str, dict[TableKey, TypedEntry]]:
        client = self._c(self.db_name)
        out: dict[str, dict[TableKey, TypedEntry]] = {}
        for full in _keys(client, "*"):
            if self.TABLE_NAME_SEPARATOR not in full:
                continue
            table, row = full.split(self.TABLE_NAME_SEPARATOR, 1)
            try:
                entry = self.raw_to_typed(_hgetall(client, full))
            except redis.exceptions.ResponseError:
                continue  # not a hash
            if entry is not None:
                out.setdefault(table, {})[self.deserialize_key(row)] = entry
        return out

    # -- subscribe / listen -------------------------------------------------------------------
    def subscribe(
        self,
        table: str,
        handler: Callable[[str, str, TypedEntry | None], Any],
        fire_init_data: bool = False,
    ) -> None:
        """Call ``handler(table, key, data)`` from ``listen()`` for changes of ``table``;
        ``data`` is None when the entry was deleted."""
        self.handlers[table] = handler
        self.fire_init_data[table] = fire_init_data

    def unsubscribe(self, table: str) -> None:
        self.handlers.pop(table, None)
        self.fire_init_data.pop(table, None)

    def stop_listen(self) -> None:
        """STUB-ONLY. Make a running ``listen()`` return within about 0.2 s."""
        self._listen_stop.set()

    def listen(
        self,
        init_data_handler: Callable[[dict[str, dict[TableKey, TypedEntry]]], Any] | None = None,
    ) -> None:
        """Block dispatching keyspace events of subscribed tables to their handlers."""
        self._listen_stop.clear()
        client = self._c(self.db_name)
        pubsub = client.pubsub()
        try:
            pubsub.psubscribe(f"__keyspace@{self.get_dbid(self.db_name)}__:*")
            init = {t: self.get_table(t) for t in self.handlers}
            if init_data_handler is not None:
                init_data_handler(init)
            for table, entries in init.items():
                if self.fire_init_data.get(table):
                    for key, entry in entries.items():
                        self.handlers[table](table, self.serialize_key(key), entry)
            while not self._listen_stop.is_set():
                msg = pubsub.get_message(timeout=0.2)
                if msg is None or msg.get("type") != "pmessage":
                    continue
                full = msg["channel"].split(":", 1)[1]
                if self.TABLE_NAME_SEPARATOR not in full:
                    continue
                table, row = full.split(self.TABLE_NAME_SEPARATOR, 1)
                handler = self.handlers.get(table)
                if handler is None:
                    continue
                if msg["data"] in _REMOVAL_OPS:
                    handler(table, row, None)
                    continue
                try:
                    raw = _hgetall(client, full)
                except redis.exceptions.ResponseError:
                    continue
                if raw:
                    handler(table, row, self.raw_to_typed(raw))
        finally:
            pubsub.close()
