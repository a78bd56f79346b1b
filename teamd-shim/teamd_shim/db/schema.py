"""Every Redis database, table and key the product reads or writes, named once.

The keys are an interface: orchagent and `show` read the LAG tables, the orchestrator and a
second shim read the ownership and warm-restart records, and a handover between two versions
only works while both spell every key alike. So nothing outside this module writes a table
name or a separator by hand.

The db ids and separators are SONiC's default layout (sonic-buildimage
database_config.json.j2, the same table the swsscommon stub falls back to); `sonic_db.connect`
uses them for every connection and the raw redis-py clients take the ids from here. STATE_DB
and CONFIG_DB join a table and its key with `|`, APPL_DB with `:` (as swss-common does; the
tables and their fields: hld §4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# ---- databases ---------------------------------------------------------------------------
APPL_DB: Final = "APPL_DB"
CONFIG_DB: Final = "CONFIG_DB"
STATE_DB: Final = "STATE_DB"
DB_IDS: Final[dict[str, int]] = {APPL_DB: 0, CONFIG_DB: 4, STATE_DB: 6}
SEPARATORS: Final[dict[str, str]] = {APPL_DB: ":", CONFIG_DB: "|", STATE_DB: "|"}
APPL_DB_ID: Final = DB_IDS[APPL_DB]
CONFIG_DB_ID: Final = DB_IDS[CONFIG_DB]
STATE_DB_ID: Final = DB_IDS[STATE_DB]

# ---- CONFIG_DB (read) --------------------------------------------------------------------
PORTCHANNEL: Final = "PORTCHANNEL"
PORTCHANNEL_MEMBER: Final = "PORTCHANNEL_MEMBER"  # key <lag>|<port>
DEVICE_METADATA: Final = "DEVICE_METADATA"  # key localhost, field mac
PORT: Final = "PORT"  # key <port>: admin_status, mtu (CONFIG_DB); PORT_TABLE in APPL_DB
PORT_TABLE: Final = "PORT_TABLE"
CONFIG_DB_INITIALIZED: Final = "CONFIG_DB_INITIALIZED"  # a plain key, set by config-setup

# ---- the LAG tables (STATE_DB as tlm_teamd/teamsyncd, APPL_DB as teamsyncd) --------------
LAG_TABLE: Final = "LAG_TABLE"  # key <lag>
LAG_MEMBER_TABLE: Final = "LAG_MEMBER_TABLE"  # key <lag><sep><port>

# ---- the shim's own records (STATE_DB) ---------------------------------------------------
# refused CONFIG_DB entries, keyed by the CONFIG_DB key (`PORTCHANNEL|<lag>`,
# `PORTCHANNEL_MEMBER|<lag>|<port>`), field `error`: never in LAG_TABLE / LAG_MEMBER_TABLE,
# whose mere key tells intfmgrd, vlanmgrd, stpmgrd and natmgrd that the LAG is ready (hld §4)
CONFIG_ERROR_TABLE: Final = "TEAMD_CONFIG_ERROR_TABLE"
OWNER_TABLE: Final = "TEAMD_OWNER_TABLE"  # key teamd: epoch, owner, since, alive_at
SHIM_INSTANCE_TABLE: Final = "TEAMD_SHIM_INSTANCE"  # key <instance name>
SHIM_STATE_TABLE: Final = "TEAMD_SHIM_STATE"  # the shadow snapshot, key <instance name>
# the final snapshot of a yield, in a table of its own: a shadow snapshot still queued in the
# publisher thread when the owner yields lands in SHIM_STATE_TABLE and can never overwrite it
SHIM_FINAL_TABLE: Final = "TEAMD_SHIM_FINAL"

# ---- the orchestrator's records (STATE_DB) -----------------------------------------------
WARM_RESTART_TABLE: Final = "WARM_RESTART_TABLE"  # SONiC's: state, restore_count
WARM_RESTART_ENABLE_TABLE: Final = "WARM_RESTART_ENABLE_TABLE"  # SONiC's: enable
WARM_RESTART_LOCK: Final = "WARM_RESTART_LOCK"
WARM_RESTART_RUN: Final = "WARM_RESTART_RUN"  # key <run id>
# docker runtime: the image teamd runs and the one before it (what rollback-docker goes back to)
IMAGES_TABLE: Final = "TEAMD_HITLESS_IMAGES"
SUPERVISOR_TABLE: Final = "TEAMD_SUPERVISOR"

TEAMD: Final = "teamd"  # the key of every one-per-box record: SONiC names the service so


# ---- the ProducerStateTable keyspace (APPL_DB) --------------------------------------------
# A fact about swss-common, not an API of its Python module (hld §13.8): producerstatetable.cpp's
# Lua adds the key to `<T>_KEY_SET`, writes the fields into the pending hash `_<T>:<key>`
# (getStateHashPrefix "_" + getKeyName), adds deleted keys to `<T>_DEL_SET` as well, and
# publishes "G" on `<T>_CHANNEL@<db id>` (TableBase::getChannelName(int)); orchagent's consumer
# pops from there. The fenced writes (ownership.FENCED_PRODUCER_LUA) address these keys
# themselves, so they are spelled here, once.
STATE_HASH_PREFIX: Final = "_"


@dataclass(frozen=True)
class ProducerKeys:
    """The Redis keys one ProducerStateTable write of `<table>:<key>` touches."""

    key_set: str
    pending: str
    del_set: str
    channel: str


def producer_keys(table: str, key: str, db: str = APPL_DB) -> ProducerKeys:
    return ProducerKeys(
        key_set=f"{table}_KEY_SET",
        pending=f"{STATE_HASH_PREFIX}{table}{SEPARATORS[db]}{key}",
        del_set=f"{table}_DEL_SET",
        channel=f"{table}_CHANNEL@{DB_IDS[db]}",
    )


def redis_key(db: str, table: str, key: str) -> str:
    """The Redis key of `table`'s entry `key` in `db` (what swss-common's Table writes)."""
    return f"{table}{SEPARATORS[db]}{key}"


def keys_pattern(db: str, table: str) -> str:
    """A KEYS/SCAN pattern for every entry of `table` in `db`."""
    return redis_key(db, table, "*")


# raw keys, for the redis-py clients (ownership Lua, the journal, the supervisor, status)
OWNER_KEY: Final = redis_key(STATE_DB, OWNER_TABLE, TEAMD)
INSTANCE_PREFIX: Final = redis_key(STATE_DB, SHIM_INSTANCE_TABLE, "")
SNAPSHOT_PREFIX: Final = redis_key(STATE_DB, SHIM_STATE_TABLE, "")
FINAL_PREFIX: Final = redis_key(STATE_DB, SHIM_FINAL_TABLE, "")
LOCK_KEY: Final = redis_key(STATE_DB, WARM_RESTART_LOCK, TEAMD)
RUN_PREFIX: Final = redis_key(STATE_DB, WARM_RESTART_RUN, "")
# SONiC's per-process warm-restart rows of the teamd container (swss-common warm_restart.cpp):
# `show warm_restart state` lists them, sonic-installer waits for teamsyncd's `reconciled`
TEAMMGRD: Final = "teammgrd"
TEAMSYNCD: Final = "teamsyncd"
TEAMMGRD_KEY: Final = redis_key(STATE_DB, WARM_RESTART_TABLE, TEAMMGRD)
TEAMSYNCD_KEY: Final = redis_key(STATE_DB, WARM_RESTART_TABLE, TEAMSYNCD)
ENABLE_KEY: Final = redis_key(STATE_DB, WARM_RESTART_ENABLE_TABLE, TEAMD)
SYSTEM_ENABLE_KEY: Final = redis_key(STATE_DB, WARM_RESTART_ENABLE_TABLE, "system")
# the orchestrator's pointer to its last run (WARM_RESTART_RUN|<id>); its own table, so that
# SONiC's WARM_RESTART_TABLE holds only the rows SONiC's processes would write
LAST_RUN_KEY: Final = redis_key(STATE_DB, "TEAMD_HITLESS_LAST_RUN", TEAMD)
IMAGES_KEY: Final = redis_key(STATE_DB, IMAGES_TABLE, TEAMD)
SUPERVISOR_KEY: Final = redis_key(STATE_DB, SUPERVISOR_TABLE, TEAMD)


@dataclass(frozen=True)
class Target:
    """One hash the shim owns: a plain STATE_DB Table entry or an APPL_DB producer entry.

    Hashable and compared by value: the publisher keys its desired and written state by it,
    and the shim its refusals."""

    db: str  # STATE_DB or APPL_DB
    table: str
    key: str
    # a hash others own too (APPL_DB PORT_TABLE is portmgrd's): only the fields we put are
    # ours, compared and written alone; never deleted
    partial: bool = False

    @property
    def redis_key(self) -> str:
        """What a raw redis-py client reads (the publisher's compare before a first write)."""
        return redis_key(self.db, self.table, self.key)


def _member_key(db: str, lag: str, port: str) -> str:
    return f"{lag}{SEPARATORS[db]}{port}"


# The LAG tables as teamsyncd and tlm_teamd key them (orchagent and `show` parse these keys),
# the member key joined with its database's own separator.
def state_lag(lag: str) -> Target:
    return Target(STATE_DB, LAG_TABLE, lag)


def state_member(lag: str, port: str) -> Target:
    return Target(STATE_DB, LAG_MEMBER_TABLE, _member_key(STATE_DB, lag, port))


def appl_lag(lag: str) -> Target:
    return Target(APPL_DB, LAG_TABLE, lag)


def appl_member(lag: str, port: str) -> Target:
    return Target(APPL_DB, LAG_MEMBER_TABLE, _member_key(APPL_DB, lag, port))


def appl_port(port: str) -> Target:
    """APPL_DB PORT_TABLE:<port>: teammgrd sets a member's `mtu` (and `admin_status` when it
    leaves the LAG); portmgrd owns the rest of the hash."""
    return Target(APPL_DB, PORT_TABLE, port, partial=True)


# The shim's records: read back by ownership.OwnerStore (INSTANCE_PREFIX, SNAPSHOT_PREFIX) in
# another process, maybe of another version, so the Target and the raw key must agree.
def shim_instance(name: str) -> Target:
    return Target(STATE_DB, SHIM_INSTANCE_TABLE, name)


def shim_state(name: str) -> Target:
    return Target(STATE_DB, SHIM_STATE_TABLE, name)


def run_key(run_id: str) -> str:
    return RUN_PREFIX + run_id


def lag_config_error(lag: str) -> Target:
    """Where a refusal of CONFIG_DB `PORTCHANNEL|<lag>` is published."""
    return Target(STATE_DB, CONFIG_ERROR_TABLE, redis_key(CONFIG_DB, PORTCHANNEL, lag))


def member_config_error(lag: str, port: str) -> Target:
    """Where a refusal of CONFIG_DB `PORTCHANNEL_MEMBER|<lag>|<port>` is published."""
    key = redis_key(CONFIG_DB, PORTCHANNEL_MEMBER, _member_key(CONFIG_DB, lag, port))
    return Target(STATE_DB, CONFIG_ERROR_TABLE, key)
