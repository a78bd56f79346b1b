"""The control socket (teamdctl's counterpart): transport, client, and the state items it serves
(`state dump`, `state item get/set`) from the same table that feeds STATE_DB."""
