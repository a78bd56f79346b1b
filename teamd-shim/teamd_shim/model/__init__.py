"""Plain records every layer above the LACP core names: a LAG's desired config (validated as
teammgrd would), the typed contracts between processes, a running LAG. No I/O."""
