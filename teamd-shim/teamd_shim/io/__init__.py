"""The kernel side: member sockets, netdev watch, the wire tap, who this process is, loop timers,
and the dataplane backends (the team driver, or APPL_DB alone). Thin adapters, no policy."""

from teamd_shim.io import pyroute2_light

pyroute2_light.load()  # before any pyroute2 import below this package (pyroute2_light.py)
