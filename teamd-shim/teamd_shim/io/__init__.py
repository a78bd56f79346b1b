"""The kernel side: member sockets, netdev watch, the wire tap, who this process is, loop timers,
and the dataplane backends (the team driver, or APPL_DB alone). Thin adapters, no policy."""
