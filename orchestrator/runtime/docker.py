"""The `docker` runtime: SONiC's teamd -> teamd_bak flow (fast-mode HLD, hld §11).

`warm-restart` runs outside the shim's container (on the host as `sonic-installer` does, or in
the SONiC shape's long-lived `teamd` container, containers/sonic/). The running shim container
(`teamd` by default; its *base name* is a parameter, `teamd-lacp` in the SONiC shape) is renamed
`<base>_bak`; a new `<base>` is created from IMAGE (default: the running image) with the whole
configuration the old container set beyond its image (`successor_config`: the inspected
HostConfig as is, and every Config field that differs from the old image's: env, labels,
healthcheck, tty, user, stop signal and timeout, working dir, entrypoint ...) and `--role auto`
(a standby while the run waits for it, an active on any later restart of that container); the
signals go to the containers (their init forwards them to the shim); `<base>_bak` is removed
once its shim has exited by itself. Rollback removes the new container and renames the old back.

Containers are addressed by id, never by a pid: the shim's pid is in its own pid namespace.
Every Docker API call goes through one tenacity layer (`_retry`) that retries only transient
failures (connection errors, 5xx); a 404/409 is an answer, not a glitch.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from orchestrator.runtime.base import Instance, RuntimeFailure
from orchestrator.runtime.process import shim_ctl_dir, shim_name, standby_argv
from teamd_shim.control.transport import DEFAULT_CTL_DIR
from teamd_shim.db.schema import INSTANCE_PREFIX

log = logging.getLogger(__name__)
BAK_SUFFIX = "_bak"
# the shim containers' base name (`warm-restart --container-name`); unset: the owner's container
# keeps whatever name it has (`teamd`, as SONiC names its container)
CONTAINER_ENV = "TEAMD_HITLESS_CONTAINER"
# what a teamd-hitless teamd container carries (scripts/build_images.sh labels the image; a
# container's Config.Labels holds its image's): anything else is not ours to rename or signal
ROLE_LABEL, TEAMD_ROLE = "teamd-hitless.role", "teamd"
SHIM_EXE = "teamd-shim"


def _transient(e: BaseException) -> bool:
    import docker.errors
    import requests

    if isinstance(e, requests.exceptions.ConnectionError):
        return True
    return (
        isinstance(e, docker.errors.APIError)
        and e.response is not None
        and e.response.status_code >= 500
        and "is not running" not in str(e)
    )


def _retry(fn: Any, *args: Any, **kw: Any) -> Any:
    for attempt in Retrying(
        stop=stop_after_delay(5),
        reraise=True,
        wait=wait_exponential_jitter(initial=0.05, max=0.5, jitter=0.05),
        retry=retry_if_exception(_transient),
        before_sleep=before_sleep_log(log, logging.WARNING),
    ):
        with attempt:
            return fn(*args, **kw)
    raise AssertionError("unreachable")


def pid_namespace_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


def host_path(mounts: list[dict[str, Any]], path: str) -> str:
    """`path` inside the container, as this host sees it (through the longest bind mount)."""
    best: tuple[int, str] | None = None
    for m in mounts:
        dest, src = m.get("Destination", ""), m.get("Source", "")
        if not dest or not src:
            continue
        if path == dest or path.startswith(dest.rstrip("/") + "/"):
            if best is None or len(dest) > best[0]:
                best = (len(dest), src + path[len(dest) :])
    if best is None:
        raise RuntimeFailure(
            f"the shim's control socket {path} is not on a volume shared with the host: mount "
            f"a host directory that only root and the teamd containers share on "
            f"{posixpath.dirname(path)} (e.g. -v RUNDIR/teamd-shim:{DEFAULT_CTL_DIR}, never "
            "the Redis socket's directory)"
        )
    return best[1]


def container_ctl_dir(cfg: dict[str, Any]) -> str:
    """The shim's control-socket directory inside the container, from what the container
    runs (its Config: Cmd, Env, WorkingDir), by the shim's own rule (process.shim_ctl_dir)."""
    env = dict(str(e).partition("=")[::2] for e in cfg.get("Env") or [] if "=" in str(e))
    cmd = [str(a) for a in cfg.get("Cmd") or []]
    return posixpath.normpath(shim_ctl_dir(cmd, env, cfg.get("WorkingDir") or "/"))


def container_ctl(cfg: dict[str, Any], name: str) -> str:
    """The control socket of shim `name` inside the container (computed, never read from a
    record: STATE_DB is writable by every container that mounts the Redis socket)."""
    return posixpath.join(container_ctl_dir(cfg), f"{name}.sock")


# Config fields a container may set beyond its image (`docker create --user/-t/--health-*/
# --stop-signal/--stop-timeout/-w/--entrypoint/-i/--expose/-v ...`). Each is carried to the
# successor when the old container's value differs from the old image's: then the container set
# it. A value equal to the image's is left unset, so an upgrade's new image brings its own.
CARRIED_FIELDS = (
    "User",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Healthcheck",
    "WorkingDir",
    "Entrypoint",
    "StopSignal",
    "StopTimeout",
    "ExposedPorts",
    "Volumes",
    "Shell",
    "NetworkDisabled",
    "MacAddress",
    "Domainname",
)


def _engine_set_hostname(attrs: dict[str, Any]) -> bool:
    """Whether Config.Hostname is the engine's, not the user's: the container's short id, or
    the host's / the network owner's with a shared UTS or network namespace (Docker refuses a
    hostname with `--network container:X`)."""
    hc = attrs.get("HostConfig") or {}
    mode = str(hc.get("NetworkMode") or "")
    hostname = str((attrs.get("Config") or {}).get("Hostname") or "")
    return (
        not hostname
        or mode == "host"
        or mode.startswith("container:")
        or hc.get("UTSMode") == "host"
        or hostname == str(attrs.get("Id", ""))[:12]
    )


def successor_config(
    attrs: dict[str, Any],
    image_cfg: dict[str, Any],
    image: str,
    argv: list[str],
    restart_policy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The create body (Config + HostConfig) of a container that replaces the one inspected as
    `attrs`: its HostConfig as is (network mode, mounts, caps, tmpfs, read-only root, restart
    policy unless `restart_policy`), every Config field the container set beyond its image
    (`image_cfg`, the old image's Config; env and labels entry by entry, the rest by
    CARRIED_FIELDS), IMAGE and the command `argv`. Pure."""
    cfg = attrs.get("Config") or {}
    hc = dict(attrs.get("HostConfig") or {})
    if restart_policy is not None:
        hc["RestartPolicy"] = restart_policy
    img_env = set(image_cfg.get("Env") or [])
    img_labels = image_cfg.get("Labels") or {}
    body: dict[str, Any] = {
        f: cfg[f] for f in CARRIED_FIELDS if f in cfg and cfg[f] != image_cfg.get(f)
    }
    if not _engine_set_hostname(attrs):
        body["Hostname"] = cfg["Hostname"]
    body.update(
        Image=image,
        Cmd=argv,
        Env=[e for e in cfg.get("Env") or [] if e not in img_env],
        Labels={k: v for k, v in (cfg.get("Labels") or {}).items() if img_labels.get(k) != v},
        HostConfig=hc,
    )
    return body


def _describe_container(attrs: dict[str, Any]) -> str:
    name = str(attrs.get("Name", "")).lstrip("/") or "?"
    image = (attrs.get("Config") or {}).get("Image", "") or str(attrs.get("Image", ""))[:19]
    return f"{name} from image {image or '?'}"


def _check_pidns(
    inst: Instance, key: str, attrs: dict[str, Any], pidns_of: Callable[[int], str]
) -> None:
    """The container's init must be in the record's pid namespace. From a pid namespace that
    cannot see the container's pid (a supervisor in a container of its own: /proc shows its own
    processes, and without CAP_SYS_PTRACE another container's namespaces are not readable) it
    cannot be checked: said once in the log, the other checks stand."""
    cid = str(attrs.get("Id", ""))
    state = attrs.get("State") or {}
    pid = int(state.get("Pid") or 0)
    if not (pid and state.get("Running")):
        raise RuntimeFailure(
            f"{key} field pidns is {inst.pidns!r}, but container {cid[:12]} "
            f"({_describe_container(attrs)}) is not running: refused; nothing was changed"
        )
    seen = pidns_of(pid)
    if seen and seen != inst.pidns:
        raise RuntimeFailure(
            f"{key} field pidns is {inst.pidns!r}, but container {cid[:12]} "
            f"({_describe_container(attrs)}) runs in {seen!r}: refused; nothing was changed"
        )
    if not seen and cid not in _UNVERIFIED:
        _UNVERIFIED.add(cid)
        log.warning(
            "container %s: its pid namespace cannot be read from here (/proc/%d/ns/pid); "
            "checked by label, command and name only",
            cid[:12],
            pid,
        )


_UNVERIFIED: set[str] = set()


def is_shim_container(attrs: dict[str, Any]) -> bool:
    """A teamd-hitless shim container (the product's label, `teamd-shim` as its command): the
    only kind the runtimes rename, start, kill or remove. The SONiC shape's `teamd` runs the
    supervisor from the same image and is never one of them."""
    cfg = attrs.get("Config") or {}
    cmd = [str(a) for a in cfg.get("Cmd") or []]
    labels = cfg.get("Labels") or {}
    return (
        labels.get(ROLE_LABEL) == TEAMD_ROLE
        and bool(cmd)
        and posixpath.basename(cmd[0]) == SHIM_EXE
    )


def check_teamd_container(
    inst: Instance, attrs: dict[str, Any], pidns_of: Callable[[int], str] = pid_namespace_of
) -> str:
    """Refuse a container that is not the record's teamd-hitless shim; return the shim's
    control socket as the container sees it. Pure but for `pidns_of`; nothing is done to the
    container either way."""
    key = f"{INSTANCE_PREFIX}{inst.name}"
    cfg = attrs.get("Config") or {}
    cid = str(attrs.get("Id", ""))
    cmd = [str(a) for a in cfg.get("Cmd") or []]
    labels = cfg.get("Labels") or {}
    if not is_shim_container(attrs):
        raise RuntimeFailure(
            f"{key} field container is {inst.container or cid}, which is "
            f"{_describe_container(attrs)} (label {ROLE_LABEL}={labels.get(ROLE_LABEL, '')!r}, "
            f"command {cmd[:1]!r}), not a teamd-hitless teamd container: refused; nothing was "
            "changed"
        )
    runs = shim_name(cmd)
    if runs != inst.name:
        raise RuntimeFailure(
            f"{key}: container {cid[:12]} ({_describe_container(attrs)}) runs the shim named "
            f"{runs!r} (--name in its command), not {inst.name!r}: refused; nothing was changed"
        )
    if inst.pidns:
        _check_pidns(inst, key, attrs, pidns_of)
    ctl = container_ctl(cfg, inst.name)
    if posixpath.normpath(inst.ctl or "/") != ctl:
        raise RuntimeFailure(
            f"{key} field ctl is {inst.ctl!r}, but container {cid[:12]} "
            f"({_describe_container(attrs)}) puts the control socket of {inst.name!r} at "
            f"{ctl!r} (its --ctl-dir / TEAMD_SHIM_CTL_DIR / default): the record is not to be "
            "trusted, refused; nothing was changed"
        )
    return ctl


class DockerRuntime:
    name = "docker"

    def __init__(
        self,
        image: str | None = None,
        base_url: str | None = None,
        container_name: str | None = None,
    ) -> None:
        self.image = image
        self.base_url = base_url
        # the shim containers' base name; None: the owner's container keeps its own name
        self.container_name = container_name or os.environ.get(CONTAINER_ENV) or None
        self._client: Any = None

    # ---- plumbing --------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            try:
                self._client = (
                    docker.DockerClient(base_url=self.base_url, timeout=30)
                    if self.base_url
                    else docker.from_env(timeout=30)
                )
                _retry(self._client.ping)
            except Exception as e:
                self._client = None
                where = (
                    self.base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
                )
                raise RuntimeFailure(
                    f"no Docker engine answers at {where}: {e}. Start dockerd (`make images` "
                    "does), or use --runtime process"
                ) from None
        return self._client

    def _get(self, ref: str) -> Any:
        import docker.errors

        try:
            return _retry(self.client.containers.get, ref)
        except docker.errors.NotFound:
            return None

    def _find(self, inst: Instance) -> Any:
        """By the container id the shim's cgroup named, else by its pid namespace."""
        if inst.container:
            ctr = self._get(inst.container)
            if ctr is not None:
                return ctr
        if inst.pidns:
            # ids from one call, then each inspected on its own: `containers.list()` inspects
            # them itself and fails with NotFound if one is removed in between
            for summary in _retry(self.client.api.containers):
                ctr = self._get(summary["Id"])
                if ctr is None:
                    continue
                pid = int(ctr.attrs.get("State", {}).get("Pid") or 0)
                if pid and pid_namespace_of(pid) == inst.pidns:
                    return ctr
        return None

    # ---- Runtime ---------------------------------------------------------------------------
    def locate(self, inst: Instance) -> Instance:
        ctr = self._find(inst)
        if ctr is None:
            raise RuntimeFailure(
                f"{inst.name!r} runs in no container this Docker engine knows (container "
                f"{inst.container[:12] or '?'}, {inst.pidns or 'no pid namespace'}): is "
                "warm-restart talking to the right engine (DOCKER_HOST)? Or use --runtime "
                "process"
            )
        # nothing is done to a container before it has been checked: the record (STATE_DB)
        # may have been planted by any container that mounts the Redis socket
        ctl = host_path(ctr.attrs.get("Mounts", []), check_teamd_container(inst, ctr.attrs))
        return dataclasses.replace(
            inst,
            handle=ctr.id,
            ctl=ctl,
            image=ctr.attrs["Image"],
            image_ref=ctr.attrs["Config"].get("Image", ""),
            container_name=ctr.name,
            container=ctr.id,
        )

    def resolve_image(self, ref: str) -> Any:
        import docker.errors

        try:
            return _retry(self.client.images.get, ref)
        except docker.errors.ImageNotFound:
            raise RuntimeFailure(
                f"no image {ref!r} in this Docker engine (`docker images`); "
                "build it (`make images`) or `docker load` it"
            ) from None

    def start_standby(
        self, active: Instance, new_name: str, target: str | None, *, hot: bool = False
    ) -> str:
        old = self._get(active.handle)
        if old is None:
            raise RuntimeFailure(f"container {active.handle[:12]} is gone")
        # default: the very image the active runs (by id: its tag may have moved since);
        # check_target has made sure the engine has it
        ref = target or self.image or active.image
        attrs = old.attrs
        name = old.name.lstrip("/")
        if self.container_name and name != self.container_name:
            raise RuntimeFailure(
                f"the owner {active.name} runs in container {name!r}, not {self.container_name!r} "
                f"(the base name, {CONTAINER_ENV} / --container-name): a promotion the supervisor "
                "has not renamed yet? Retry in a few seconds; nothing was changed"
            )
        bak = name + BAK_SUFFIX
        if self._get(bak) is not None:
            raise RuntimeFailure(
                f"a container {bak!r} exists already (left by an interrupted "
                "run?): run `warm-restart recover`, or remove it"
            )
        old_image_cfg = self.resolve_image(attrs["Image"]).attrs.get("Config") or {}
        # `--role auto`: the Cmd outlives the handover; a later restart of this container
        # (docker restart, a restart policy, a reboot) must start an active, Redis slow or not
        argv = standby_argv(
            list(attrs["Config"].get("Cmd") or []), new_name, None, hot=hot, role="auto"
        )
        body = successor_config(attrs, old_image_cfg, ref, argv)
        policy = body["HostConfig"].get("RestartPolicy") or {"Name": "no"}
        # teamd_bak must not come back when its shim exits after the handover
        _retry(old.rename, bak)
        try:
            if policy.get("Name", "no") not in ("", "no"):
                _retry(old.update, restart_policy={"Name": "no"})
            ctr = _retry(self.client.api.create_container_from_config, body, name=name)
            _retry(self.client.api.start, ctr["Id"])
        except BaseException:
            self._undo_rename(old, name, policy)
            raise
        return str(ctr["Id"])

    def check_target(self, target: str | None) -> None:
        if target is not None:
            self.resolve_image(target)

    def describe(self, handle: str) -> str:
        ctr = self._get(handle)
        if ctr is None:
            return f"container {handle[:12]} (gone)"
        tags = ctr.image.tags if ctr.image is not None else []
        image = tags[0] if tags else ctr.attrs["Image"][:19]
        return f"container {ctr.name} {handle[:12]} ({image})"

    def signal(self, handle: str, sig: int) -> None:
        _retry(self.client.api.kill, handle, signal=int(sig))

    def alive(self, handle: str) -> bool:
        ctr = self._get(handle)
        return ctr is not None and bool(ctr.attrs.get("State", {}).get("Running"))

    def cpu_seconds(self, handle: str) -> float | None:
        """The container's init and its child (tini, the shim), read from /proc by the pid the
        engine reports; None when that pid is not visible here (another pid namespace)."""
        from teamd_shim.io.identity import proc_cpu_seconds

        ctr = self._get(handle)
        pid = ctr.attrs.get("State", {}).get("Pid") if ctr is not None else None
        if not pid:
            return None
        total = proc_cpu_seconds(int(pid))
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = [int(c) for c in f.read().split()]
        except OSError:
            children = []
        for child in children:
            total = (total or 0.0) + (proc_cpu_seconds(child) or 0.0)
        return total

    def kill(self, handle: str, timeout: float = 2.0) -> None:
        import docker.errors

        ctr = self._get(handle)
        if ctr is None:
            return
        try:
            if ctr.attrs.get("State", {}).get("Paused"):
                _retry(self.client.api.unpause, handle)
            _retry(self.client.api.kill, handle, signal="SIGKILL")
        except docker.errors.APIError as e:
            if "is not running" not in str(e):
                raise
        try:
            _retry(self.client.api.wait, handle, timeout=timeout)
        except Exception as e:  # still there after timeout: the caller checks alive()
            log.warning("container %s did not stop within %.1f s: %s", handle[:12], timeout, e)

    def _remove(self, handle: str) -> None:
        import docker.errors

        try:
            _retry(self.client.api.remove_container, handle, force=True, v=False)
        except docker.errors.NotFound:
            pass

    def _undo_rename(self, old: Any, name: str, policy: dict[str, Any]) -> None:
        """Give `old` its name back (removing whatever new container holds it) and its policy."""
        cur = self._get(name)
        if cur is not None and cur.id != old.id:
            self._remove(cur.id)  # a half-created new one
        _retry(old.rename, name)
        if policy.get("Name", "no") not in ("", "no"):
            _retry(old.update, restart_policy=policy)

    def committed(self, old: Instance, new_handle: str) -> None:
        """teamd_bak has exited: remove it (no kernel or DB is touched by a removal)."""
        self._remove(old.handle)

    def rolled_back(self, old: Instance, new_handle: str | None, run: dict[str, str]) -> None:
        """Remove the new container, give teamd_bak its name and the restart policy it had
        before the run (journaled: it was set to "no" for the handover)."""
        ctr = self._get(old.handle)
        if new_handle:
            self._remove(new_handle)
        if ctr is None:
            return
        name = old.container_name or ctr.name.lstrip("/").removesuffix(BAK_SUFFIX)
        policy = {
            "Name": run.get("restart_policy") or "no",
            "MaximumRetryCount": int(run.get("restart_max") or 0),
        }
        self._undo_rename(ctr, name, policy)

    def journal_fields(self, active: Instance) -> dict[str, str]:
        ctr = self._get(active.handle)
        policy = (ctr.attrs["HostConfig"].get("RestartPolicy") or {}) if ctr else {}
        return {
            "old_container": active.handle,
            "old_container_name": active.container_name,
            "old_image": active.image,
            "restart_policy": policy.get("Name", "no"),
            "restart_max": str(policy.get("MaximumRetryCount", 0)),
        }


def load_tarball(rt: DockerRuntime, path: Path) -> Any:
    """`docker load` a saved image (as `sonic-installer upgrade-docker` does with a file)."""
    with open(path, "rb") as f:
        images = _retry(rt.client.images.load, f.read())
    if not images:
        raise RuntimeFailure(f"{path}: `docker load` found no image in it")
    return images[0]
