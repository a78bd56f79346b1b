"""The start-up sweep's decision (db/stale.py): what an earlier instance left, judged purely."""

from __future__ import annotations

from teamd_shim.db import stale
from teamd_shim.db.schema import (
    APPL_DB,
    STATE_DB,
    appl_lag,
    appl_member,
    lag_config_error,
    state_lag,
    state_member,
)


def test_parse_knows_every_lag_key_shape_and_nothing_else() -> None:
    assert stale.parse(STATE_DB, "LAG_TABLE|PortChannel0001") == stale.Found(
        state_lag("PortChannel0001"), "PortChannel0001"
    )
    assert stale.parse(STATE_DB, "LAG_MEMBER_TABLE|PortChannel0001|Ethernet0") == stale.Found(
        state_member("PortChannel0001", "Ethernet0"), "PortChannel0001", "Ethernet0"
    )
    assert stale.parse(APPL_DB, "LAG_TABLE:PortChannel0002") == stale.Found(
        appl_lag("PortChannel0002"), "PortChannel0002"
    )
    # the pending producer hash names the same entry
    assert stale.parse(APPL_DB, "_LAG_MEMBER_TABLE:PortChannel0002:Ethernet4") == stale.Found(
        appl_member("PortChannel0002", "Ethernet4"), "PortChannel0002", "Ethernet4"
    )
    assert stale.parse(STATE_DB, "TEAMD_CONFIG_ERROR_TABLE|PORTCHANNEL|Bogus1") == stale.Found(
        lag_config_error("Bogus1"), ""
    )
    for db, key in (
        (STATE_DB, "LAG_TABLE"),
        (APPL_DB, "LAG_TABLE_KEY_SET"),
        (STATE_DB, "PORT_TABLE|Ethernet0"),
        (APPL_DB, "LAG_MEMBER_TABLE:PortChannel1"),
    ):
        assert stale.parse(db, key) is None, key


def test_only_what_the_running_config_does_not_name_is_stale() -> None:
    keys = [
        (STATE_DB, "LAG_TABLE|PortChannel0001"),
        (STATE_DB, "LAG_TABLE|PortChannel0009"),
        (STATE_DB, "LAG_MEMBER_TABLE|PortChannel0001|Ethernet0"),
        (STATE_DB, "LAG_MEMBER_TABLE|PortChannel0001|Ethernet8"),
        (APPL_DB, "LAG_TABLE:PortChannel0009"),
        (APPL_DB, "_LAG_TABLE:PortChannel0009"),
        (STATE_DB, "TEAMD_CONFIG_ERROR_TABLE|PORTCHANNEL|Bogus1"),
        (STATE_DB, "TEAMD_CONFIG_ERROR_TABLE|PORTCHANNEL|Bogus2"),
    ]
    found = [f for db, k in keys if (f := stale.parse(db, k)) is not None]
    out = stale.stale(
        found,
        lags={"PortChannel0001"},
        members={("PortChannel0001", "Ethernet0")},
        refusals={lag_config_error("Bogus2")},
    )
    assert out == [
        state_lag("PortChannel0009"),
        state_member("PortChannel0001", "Ethernet8"),
        appl_lag("PortChannel0009"),  # once, although both its hashes were found
        lag_config_error("Bogus1"),
    ]
