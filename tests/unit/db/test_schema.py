"""The schema's keys are an interface (orchagent, `show`, the orchestrator, another shim version
read them): pinned here as the literal strings the product wrote before the schema existed."""

from __future__ import annotations

import pytest

from orchestrator import journal
from swsscommon import swsscommon
from teamd_shim.db import ownership, publisher, schema, sonic_db


def test_db_ids_and_separators_are_sonics_default_layout_as_the_stub_has_it() -> None:
    builtin = {name: (dbid, sep) for name, dbid, sep in swsscommon._BUILTIN_DATABASES}
    for name in (schema.APPL_DB, schema.CONFIG_DB, schema.STATE_DB):
        assert (schema.DB_IDS[name], schema.SEPARATORS[name]) == builtin[name]
    assert (schema.APPL_DB_ID, schema.CONFIG_DB_ID, schema.STATE_DB_ID) == (0, 4, 6)
    assert sonic_db.DB_IDS is schema.DB_IDS and sonic_db.SEPARATORS is schema.SEPARATORS


@pytest.mark.parametrize(
    ("built", "literal"),
    [
        (schema.state_lag("PortChannel1"), ("STATE_DB", "LAG_TABLE", "PortChannel1")),
        (schema.appl_lag("PortChannel1"), ("APPL_DB", "LAG_TABLE", "PortChannel1")),
        (
            schema.state_member("PortChannel1", "Ethernet0"),
            ("STATE_DB", "LAG_MEMBER_TABLE", "PortChannel1|Ethernet0"),
        ),
        (
            schema.appl_member("PortChannel1", "Ethernet0"),
            ("APPL_DB", "LAG_MEMBER_TABLE", "PortChannel1:Ethernet0"),
        ),
        (schema.shim_instance("teamd~2"), ("STATE_DB", "TEAMD_SHIM_INSTANCE", "teamd~2")),
        (schema.shim_state("teamd~2"), ("STATE_DB", "TEAMD_SHIM_STATE", "teamd~2")),
    ],
)
def test_builders_make_the_targets_written_by_hand_before(
    built: schema.Target, literal: tuple[str, str, str]
) -> None:
    assert built == schema.Target(*literal)
    assert hash(built) == hash(schema.Target(*literal))  # the publisher keys dicts by them


def test_redis_keys_of_targets() -> None:
    assert schema.state_member("Po1", "e0").redis_key == "LAG_MEMBER_TABLE|Po1|e0"
    assert schema.appl_member("Po1", "e0").redis_key == "LAG_MEMBER_TABLE:Po1:e0"
    assert schema.state_lag("Po1").redis_key == "LAG_TABLE|Po1"
    assert schema.appl_lag("Po1").redis_key == "LAG_TABLE:Po1"
    assert schema.shim_instance("teamd").redis_key == schema.INSTANCE_PREFIX + "teamd"
    assert schema.shim_state("teamd").redis_key == schema.SNAPSHOT_PREFIX + "teamd"
    assert schema.keys_pattern(schema.STATE_DB, schema.LAG_MEMBER_TABLE) == "LAG_MEMBER_TABLE|*"
    assert schema.keys_pattern(schema.STATE_DB, schema.LAG_TABLE) == "LAG_TABLE|*"


def test_raw_keys_are_the_ones_written_before() -> None:
    assert schema.OWNER_KEY == "TEAMD_OWNER_TABLE|teamd"
    assert schema.INSTANCE_PREFIX == "TEAMD_SHIM_INSTANCE|"
    assert schema.SNAPSHOT_PREFIX == "TEAMD_SHIM_STATE|"
    assert schema.FINAL_PREFIX == "TEAMD_SHIM_FINAL|"
    assert schema.LOCK_KEY == "WARM_RESTART_LOCK|teamd"
    assert schema.RUN_PREFIX == "WARM_RESTART_RUN|"
    assert schema.run_key("r1") == "WARM_RESTART_RUN|r1"
    # SONiC's rows of the teamd container's processes; no row of our own name there
    assert schema.TEAMMGRD_KEY == "WARM_RESTART_TABLE|teammgrd"
    assert schema.TEAMSYNCD_KEY == "WARM_RESTART_TABLE|teamsyncd"
    assert schema.SYSTEM_ENABLE_KEY == "WARM_RESTART_ENABLE_TABLE|system"
    assert schema.LAST_RUN_KEY == "TEAMD_HITLESS_LAST_RUN|teamd"
    assert schema.ENABLE_KEY == "WARM_RESTART_ENABLE_TABLE|teamd"
    assert schema.IMAGES_KEY == "TEAMD_HITLESS_IMAGES|teamd"
    assert schema.SUPERVISOR_KEY == "TEAMD_SUPERVISOR|teamd"
    assert (
        schema.PORTCHANNEL,
        schema.PORTCHANNEL_MEMBER,
        schema.DEVICE_METADATA,
        schema.CONFIG_DB_INITIALIZED,
    ) == ("PORTCHANNEL", "PORTCHANNEL_MEMBER", "DEVICE_METADATA", "CONFIG_DB_INITIALIZED")


def test_names_importers_use_still_import_from_their_old_homes() -> None:
    assert publisher.Target is schema.Target
    for name in (
        "OWNER_KEY",
        "INSTANCE_PREFIX",
        "SNAPSHOT_PREFIX",
        "FINAL_PREFIX",
        "LOCK_KEY",
        "RUN_PREFIX",
    ):
        assert getattr(ownership, name) == getattr(schema, name)
    assert journal.__all__ == [
        "ENABLE_KEY",
        "IMAGES_KEY",
        "LOCK_KEY",
        "RUN_PREFIX",
        "Journal",
    ]
    for name in journal.__all__[:-1]:
        assert getattr(journal, name) == getattr(schema, name)
    import orchestrator.handover  # its imports from ownership and journal must still resolve

    assert orchestrator.handover.Journal is journal.Journal
