"""pyroute2 without its package __init__ (io/pyroute2_light.py): the shim's imports load only
the submodules it uses, and a later `from pyroute2 import X` still gets the whole package.
Each check runs in a fresh interpreter: this one may have imported pyroute2 already."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import teamd_shim.io.links, teamd_shim.io.dataplane.team
heavy = ("pyroute2.ndb.main", "pyroute2.ipdb", "pyroute2.ipset")
light = sorted(m for m in heavy if m in sys.modules)
from pyroute2 import IPRoute, NDB
from pyroute2.iproute import IPRoute as Direct
print(light, IPRoute is Direct, "pyroute2.ndb.main" in sys.modules)
"""


def test_the_shim_loads_no_ndb_and_the_whole_package_is_there_when_asked() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["[]", "True", "True"], out
