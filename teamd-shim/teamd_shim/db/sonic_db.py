"""The one place the product imports `swsscommon`.

On a SONiC box this is the real C++ binding; in labs and CI it is `swsscommon-stub`. Only
names that exist in the real binding's Python module (sonic-swss-common `pyext/swsscommon.i`
and the headers it includes) are used, so the rest of the code never needs to know which one it
got; `tests/unit/db/test_swsscommon_api.py` holds the real module's names and checks every use
(hld §13.8). What the product needs beyond that API (the ProducerStateTable keyspace that the
fenced writes address with their own Lua) is a fact about swss-common kept in `schema.py`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from urllib.parse import urlparse

from swsscommon import swsscommon

# SONiC's fixed layout lives in schema.py with every table and key; re-exported here, where
# every connection uses it
from teamd_shim.db.schema import DB_IDS as DB_IDS
from teamd_shim.db.schema import SEPARATORS as SEPARATORS

DEFAULT_DB_CONFIG = "/var/run/redis/sonic-db/database_config.json"
DEFAULT_URL = "redis://127.0.0.1:6379"
REDIS_ENV = "TEAMD_SHIM_REDIS"
TIMEOUT_MS = 2000

DBConnector = swsscommon.DBConnector
Table = swsscommon.Table
ProducerStateTable = swsscommon.ProducerStateTable
SubscriberStateTable = swsscommon.SubscriberStateTable
Select = swsscommon.Select
FieldValuePairs = swsscommon.FieldValuePairs


class RedisUrlError(ValueError):
    """A --redis value that names no usable endpoint."""


@dataclass(frozen=True)
class Endpoint:
    """Where Redis is: a unix socket path, or a TCP host and port."""

    unix_path: str | None = None
    host: str = "127.0.0.1"
    port: int = 6379

    @property
    def url(self) -> str:
        if self.unix_path:
            return f"unix://{self.unix_path}"
        return f"redis://{self.host}:{self.port}"

    def redis_kwargs(self) -> dict[str, object]:
        """Arguments for a raw redis-py client (used only by the handover fencing scripts)."""
        if self.unix_path:
            return {"unix_socket_path": self.unix_path}
        return {"host": self.host, "port": self.port}


def parse_url(url: str) -> Endpoint:
    """Accept `unix:///path/redis.sock` or `redis://host:port`, nothing else."""
    u = urlparse(url)
    if u.scheme == "unix":
        path = u.path or u.netloc
        if not path:
            raise RedisUrlError(
                f"redis URL {url!r} has no socket path (want unix:///path/redis.sock)"
            )
        return Endpoint(unix_path=path)
    if u.scheme == "redis":
        try:
            port = u.port or 6379
        except ValueError as e:
            raise RedisUrlError(f"redis URL {url!r} has a bad port") from e
        return Endpoint(host=u.hostname or "127.0.0.1", port=port)
    raise RedisUrlError(f"redis URL {url!r}: scheme must be unix:// or redis://")


def _from_db_config(path: str) -> Endpoint | None:
    try:
        with open(path) as f:
            cfg = json.load(f)
        inst = cfg["INSTANCES"]["redis"]
    except (OSError, ValueError, KeyError):
        return None
    sock = inst.get("unix_socket_path")
    if sock and os.path.exists(sock):
        return Endpoint(unix_path=sock)
    return Endpoint(host=inst.get("hostname", "127.0.0.1"), port=int(inst.get("port", 6379)))


def resolve(url: str | None) -> Endpoint:
    """--redis, else $TEAMD_SHIM_REDIS, else SONiC's database_config.json, else loopback:6379."""
    url = url or os.environ.get(REDIS_ENV)
    if url:
        return parse_url(url)
    ep = _from_db_config(DEFAULT_DB_CONFIG)
    return ep if ep is not None else parse_url(DEFAULT_URL)


def connect(endpoint: Endpoint, db_name: str) -> swsscommon.DBConnector:
    """A DBConnector through constructors that both swsscommon and the stub have."""
    db_id = DB_IDS[db_name]
    if endpoint.unix_path:
        return swsscommon.DBConnector(db_id, endpoint.unix_path, TIMEOUT_MS)
    return swsscommon.DBConnector(db_id, endpoint.host, endpoint.port, TIMEOUT_MS)
