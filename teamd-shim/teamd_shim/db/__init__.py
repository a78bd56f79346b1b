"""Redis in SONiC's layout: the schema (every db, table and key), ownership and its Lua, the
STATE_DB/APPL_DB publisher, the CONFIG_DB watch, the one retry layer."""
