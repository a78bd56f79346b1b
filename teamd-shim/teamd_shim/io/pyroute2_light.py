"""pyroute2 without its package `__init__`, which imports every API it has (IPDB, NDB, ipset,
ipvs, nl80211, conntrack, ...): 2.9 s of a standby's start under the kernel tier's emulation,
against 1.6-2.0 s for the submodules the shim uses (io/links.py, io/dataplane/), measured in the
guest (hld §10 "Kernel tier timing"). `load()` registers the package module unexecuted, so
`import pyroute2.iproute` runs only that chain; any name asked of the package itself (`from
pyroute2 import X` elsewhere in the process) runs the real `__init__` first, so nothing that
expects the whole package breaks.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any


def load() -> None:
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not installed: the importing module's own import fails and says so
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    done = False

    def whole(name: str) -> Any:
        """A submodule (`from pyroute2 import config` asks for one this way) is imported as
        such; any other name of the package's, on first use, runs the real __init__."""
        nonlocal done
        if not name.startswith("__") and importlib.util.find_spec(f"pyroute2.{name}"):
            return importlib.import_module(f"pyroute2.{name}")
        if not done:
            done = True
            del module.__getattr__
            loader.exec_module(module)
        try:
            return module.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'pyroute2' has no attribute {name!r}") from None

    module.__getattr__ = whole  # type: ignore[method-assign]
    sys.modules["pyroute2"] = module


def is_light(module: ModuleType) -> bool:
    return "__getattr__" in module.__dict__
