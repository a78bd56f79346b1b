"""How the orchestrator starts, signals and stops shim instances.

`process` (embedded default) runs the standby as a subprocess in the active's network namespace,
the shape of SONiC's host-network teamd container. A `docker` runtime is one more class with the
same four methods.
"""

from .base import Instance, Runtime
from .process import ProcessRuntime

__all__ = ["Instance", "ProcessRuntime", "Runtime"]
