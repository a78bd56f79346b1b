"""How `warm-restart supervise` starts, stops and tidies instances, per runtime (hld §14.4).

`process`: subprocesses in the members' network namespace, the command line read from the
running owner's `/proc/<pid>/cmdline`. `docker`: containers next to the owner's, created from
its image and configuration; after a promotion the container that owns the LAGs is renamed
back to the owner's container name (`teamd`: SONiC tools and `docker exec teamd ...` expect it)
and the dead one is kept as `<name>_dead` for its logs, removed at the next promotion.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol

from orchestrator.runtime import Instance, ProcessRuntime, RuntimeFailure
from orchestrator.runtime.process import standby_argv, verified_shim
from teamd_shim.db.schema import INSTANCE_PREFIX
from teamd_shim.io.identity import pid_namespace

log = logging.getLogger(__name__)
STANDBY_SUFFIX = "_standby"
DEAD_SUFFIX = "_dead"


class Supervised(Protocol):
    name: str

    def learn(self, owner: str, rec: dict[str, str]) -> None:
        """Remember how the live owner runs (to start a standby or a cold start like it)."""
        ...

    def ready_to_start(self) -> str:
        """'' when a standby can be started, else why not."""
        ...

    def start_standby(self, owner: str, rec: dict[str, str], name: str) -> str: ...

    def start_cold(self, name: str, fallback: list[str]) -> str: ...

    def alive(self, handle: str) -> bool: ...

    def stop(self, name: str, rec: dict[str, str]) -> bool:
        """Stop a live instance we may stop (a standby); False if not ours to stop."""
        ...

    def after_promotion(
        self, old: str, old_rec: dict[str, str], new: str, new_rec: dict[str, str]
    ) -> str:
        """Tidy up around a promotion; returns what was done, for the log."""
        ...

    def state(self) -> dict[str, str]: ...

    def restore(self, fields: dict[str, str]) -> None: ...


class ProcessSupervised:
    name = "process"

    def __init__(self) -> None:
        self.rt = ProcessRuntime()
        self.template: list[str] = []
        self.ctl_dir = ""

    def learn(self, owner: str, rec: dict[str, str]) -> None:
        """The owner's command line and control directory, from the verified process only
        (its record's argv and ctl are anyone's word, hld §15.3)."""
        pid = rec.get("pid", "")
        found = verified_shim(int(pid), rec.get("starttime", ""), owner) if pid.isdigit() else None
        if found:
            self.template, ctl = found
            self.ctl_dir = os.path.dirname(ctl)

    def ready_to_start(self) -> str:
        return (
            ""
            if self.template
            else (
                "the owner's command line could not be read from /proc (another pid namespace, "
                "or its record is incomplete)"
            )
        )

    def start_standby(self, owner: str, rec: dict[str, str], name: str) -> str:
        # the runtime re-verifies the owner at /proc and starts from what it runs
        return self.rt.start_standby(Instance.from_record(owner, rec), name, None, hot=True)

    def start_cold(self, name: str, fallback: list[str]) -> str:
        return self.rt.start_cold(self.template or fallback, name, self.ctl_dir or "/tmp")

    def alive(self, handle: str) -> bool:
        return bool(handle) and self.rt.alive(handle)

    def stop(self, name: str, rec: dict[str, str]) -> bool:
        """Only a process that is, by /proc, the shim of that name: a planted pid is never
        killed."""
        pid = rec.get("pid", "")
        if not pid.isdigit() or rec.get("pidns") != pid_namespace():
            return False
        if verified_shim(int(pid), rec.get("starttime", ""), name) is None:
            log.warning(
                "%s%s names pid %s, which is not the shim %s: not stopped",
                INSTANCE_PREFIX,
                name,
                pid,
                name,
            )
            return False
        self.rt.kill(pid)
        return True

    def after_promotion(
        self, old: str, old_rec: dict[str, str], new: str, new_rec: dict[str, str]
    ) -> str:
        return ""  # the standby killed the old process itself

    def state(self) -> dict[str, str]:
        import json

        # shown by `status`; never read back (restore): nothing executable comes from Redis
        return {"shim_argv": json.dumps(self.template), "ctl_dir": self.ctl_dir}

    def restore(self, fields: dict[str, str]) -> None:
        """Nothing executable is taken back from Redis: the command line is learned again from
        the verified owner, or is the supervisor's own (its --redis and shim arguments)."""
        del fields


class DockerSupervised:
    """See the module docstring. Containers are found through Docker (by id, else by the pid
    namespace their init holds), never taken from a record's word alone."""

    name = "docker"

    def __init__(self, container_name: str | None = None) -> None:
        from orchestrator.runtime.docker import DockerRuntime

        self.rt = DockerRuntime(container_name=container_name)
        # the owner's container name: the base name when given (`--container-name`, the SONiC
        # shape's `teamd-lacp`: `teamd` is then the supervisor's own container), else learned
        # from the owner's container (`teamd`, as SONiC names it)
        self.base = self.rt.container_name or ""
        self.container_name = self.base
        self.owner_container = ""  # id

    def _locate(self, name: str, rec: dict[str, str]) -> Instance:
        return self.rt.locate(Instance.from_record(name, rec))

    def learn(self, owner: str, rec: dict[str, str]) -> None:
        try:
            inst = self._locate(owner, rec)
        except RuntimeFailure:
            return
        self.owner_container = inst.handle
        if not self.base and not inst.container_name.endswith(STANDBY_SUFFIX):
            self.container_name = inst.container_name.lstrip("/")

    def ready_to_start(self) -> str:
        return (
            ""
            if self.owner_container and self.container_name
            else ("the owner's container was not found through Docker")
        )

    def _get(self, ref: str) -> Any:
        return self.rt._get(ref)

    def start_standby(self, owner: str, rec: dict[str, str], name: str) -> str:
        from orchestrator.runtime.docker import _retry, successor_config

        old = self._get(self.owner_container)
        if old is None:
            raise RuntimeFailure(f"the owner's container {self.owner_container[:12]} is gone")
        cname = self.container_name + STANDBY_SUFFIX
        stale = self._get(cname)
        if stale is not None and stale.id == old.id:
            # the owner is a promoted standby whose container still has the standby's name
            # (its record of the promotion came after the owner record moved): name it teamd
            # first; removing "the stale standby" would remove the owner
            self.after_promotion("", {}, owner, rec)
        elif stale is not None:
            self.rt._remove(stale.id)
        attrs = old.attrs
        image_cfg = self.rt.resolve_image(attrs["Image"]).attrs.get("Config") or {}
        # `--role auto --hot`: a hot standby while an owner lives; the Cmd outlives the
        # promotion, and a restart of that container with nobody owning the LAGs is a cold start
        argv = standby_argv(
            list(attrs["Config"].get("Cmd") or []), name, None, hot=True, role="auto"
        )
        # the supervisor is the one restarter: no restart policy of the standby's own
        body = successor_config(attrs, image_cfg, attrs["Image"], argv, {"Name": "no"})
        ctr = _retry(self.rt.client.api.create_container_from_config, body, name=cname)
        _retry(self.rt.client.api.start, ctr["Id"])
        return str(ctr["Id"])

    def start_cold(self, name: str, fallback: list[str]) -> str:
        """Start the owner's container again (its shim, as the active: nobody owns the LAGs)."""
        from orchestrator.runtime.docker import _retry, is_shim_container

        cname = self.container_name or "teamd"
        ctr = self._get(cname)
        if ctr is None:
            raise RuntimeFailure(
                f"no container {cname!r} to start: start teamd by hand (`docker start`, "
                "compose, `teamd.sh start`)"
            )
        if not is_shim_container(ctr.attrs):
            raise RuntimeFailure(
                f"container {cname!r} runs no teamd-shim (the supervisor's own container? then "
                "pass the shim containers' base name: --container-name): not started"
            )
        _retry(ctr.start)
        return str(ctr.id)

    def alive(self, handle: str) -> bool:
        return bool(handle) and self.rt.alive(handle)

    def stop(self, name: str, rec: dict[str, str]) -> bool:
        try:
            inst = self._locate(name, rec)
        except RuntimeFailure:
            return False
        if not inst.container_name.lstrip("/").endswith(STANDBY_SUFFIX):
            return False  # only the standbys we created are ours to stop
        self.rt.kill(inst.handle)
        self.rt._remove(inst.handle)
        return True

    def after_promotion(
        self, old: str, old_rec: dict[str, str], new: str, new_rec: dict[str, str]
    ) -> str:
        """`teamd` (dead, or paused and fenced) -> `teamd_dead`; `teamd_standby` -> `teamd`."""
        from orchestrator.runtime.docker import _retry, is_shim_container

        name = self.container_name or "teamd"
        try:
            new_inst = self._locate(new, new_rec)
        except RuntimeFailure as e:
            return f"promoted container not found: {e}"
        done = []
        old_ctr = self._get(name)
        if old_ctr is not None and not is_shim_container(old_ctr.attrs):
            # never the supervisor's own `teamd` (SONiC shape without --container-name)
            return (
                f"container {name!r} runs no teamd-shim: not renamed, and the promoted one "
                "keeps its name (pass the shim containers' base name: --container-name)"
            )
        if old_ctr is not None and old_ctr.id != new_inst.handle:
            state = old_ctr.attrs.get("State", {})
            if state.get("Paused"):
                # fenced by the moved epoch: woken, it exits without writing (the self-fence)
                _retry(self.rt.client.api.unpause, old_ctr.id)
                done.append(f"unpaused {name} (fenced: it exits by itself)")
            try:
                _retry(self.rt.client.api.wait, old_ctr.id, timeout=5)
            except Exception:
                self.rt.kill(old_ctr.id)
            dead = self._get(name + DEAD_SUFFIX)
            if dead is not None:
                self.rt._remove(dead.id)
            _retry(old_ctr.rename, name + DEAD_SUFFIX)
            done.append(f"{name} -> {name}{DEAD_SUFFIX} (kept for its logs)")
        cur = self._get(new_inst.handle)
        if cur is not None and cur.name.lstrip("/") != name:
            _retry(cur.rename, name)
            done.append(f"{cur.name.lstrip('/')} -> {name}")
        self.owner_container = new_inst.handle
        return "; ".join(done)

    def state(self) -> dict[str, str]:
        return {"container_name": self.container_name}

    def restore(self, fields: dict[str, str]) -> None:
        """The container name is not taken back from Redis (a planted name would have the
        supervisor rename, kill or start another container): it is learned again from the
        owner's container, found through Docker (hld §15.3)."""
        del fields


def supervised_for(name: str, owner_rec: dict[str, str]) -> Supervised:
    """`auto`: docker when the owner runs in another pid namespace (a container)."""
    if name == "auto":
        inside = bool(owner_rec.get("container")) or (
            bool(owner_rec.get("pidns")) and owner_rec.get("pidns") != pid_namespace()
        )
        name = "docker" if inside else "process"
    if name == "docker":
        return DockerSupervised()  # the base name from CONTAINER_ENV (--container-name)
    if name == "process":
        return ProcessSupervised()
    raise ValueError(f"unknown runtime {name!r}")


__all__ = ["DockerSupervised", "ProcessSupervised", "Supervised", "supervised_for"]
