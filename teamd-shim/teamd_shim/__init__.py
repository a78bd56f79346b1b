"""teamd-shim: a LACP speaker standing in for SONiC teamd, built for hitless handover."""

import os
import sys

_DIST = "teamd_hitless-"


def _version() -> str:
    """The installed distribution's version (an image built with another version reports it),
    from its `.dist-info` directory's name: importlib.metadata costs ~80 ms of imports (email,
    zipfile...), a second under emulation, on the path of every standby's start (hld §10)."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith(_DIST) and name.endswith(".dist-info"):
                return name[len(_DIST) : -len(".dist-info")]
    return "0.1.0"  # run from a source tree without installing


__version__ = _version()
