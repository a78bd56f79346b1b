"""Stand-in for SONiC's ``swsscommon`` Python package, for hosts without the real one.

Why it exists: teamd-hitless must run and be tested on machines that are not SONiC switches,
yet on a switch it must talk to Redis exactly as the real daemons do. The product therefore
only ever writes ``from swsscommon import swsscommon`` (or imports names from
``swsscommon.swsscommon``); on a switch that resolves to the real SWIG binding, elsewhere to
this pure-Python subset built on redis-py. Everything lives in the ``swsscommon`` submodule,
mirroring the real package layout, so this file deliberately imports nothing.
"""
