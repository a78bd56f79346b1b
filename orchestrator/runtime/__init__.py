"""How the orchestrator starts, signals and stops shim instances.

`process` (embedded default) runs the standby as a subprocess in the active's network namespace,
the shape of SONiC's host-network teamd container. `docker` runs it as a new container next to
the running one (SONiC's teamd -> teamd_bak flow). `runtime_for` picks one.
"""

from __future__ import annotations

from orchestrator.runtime.base import Instance, Runtime, RuntimeFailure
from orchestrator.runtime.process import ProcessRuntime
from teamd_shim.io.identity import pid_namespace

RUNTIMES = ("auto", "process", "docker")


def runtime_for(name: str, active: Instance | None, image: str | None = None) -> Runtime:
    """`auto`: docker when the active shim lives in another pid namespace (a container),
    else process."""
    if name == "auto":
        inside = active is not None and (
            bool(active.container) or (bool(active.pidns) and active.pidns != pid_namespace())
        )
        name = "docker" if inside or image else "process"
    if name == "docker":
        from orchestrator.runtime.docker import DockerRuntime

        return DockerRuntime(image)
    if name == "process":
        return ProcessRuntime()
    raise ValueError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")


__all__ = ["Instance", "ProcessRuntime", "Runtime", "RuntimeFailure", "RUNTIMES", "runtime_for"]
