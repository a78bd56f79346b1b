"""A private Open vSwitch acting as the independent LACP partner of the DUT.

The partner is the judge of hitlessness, so it must be a real, unmodified implementation.
Each OvsPartner runs its own ovsdb-server and ovs-vswitchd (userspace `netdev` datapath, no
kernel module) with every OVS_* directory under its work dir, inside the partner network
namespace. The system Open vSwitch (if any) is never contacted, and `stop()` kills exactly the
two daemons it started, by pid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from teamd_lab.ovs_text import (
    MemberEvent,
    parse_bond_show,
    parse_lacp_show,
    parse_lacp_stats,
    parse_member_events,
)
from teamd_lab.procs import ProcRef, spawn

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
DEFAULT_HWADDR = "02:00:00:00:00:bb"

__all__ = ["OvsPartner", "MemberEvent", "DEFAULT_HWADDR"]


class OvsError(RuntimeError):
    """An ovs-vsctl / ovs-appctl call failed; carries the command and its stderr."""


WHOLE_S = 60.0  # appctl limit for a query about every bond


class OvsPartner:
    """One private OVS with one netdev bridge and one LACP bond per LAG."""

    def __init__(
        self,
        workdir: Path,
        netns: str | None = None,
        *,
        bridge: str = "br0",
        hwaddr: str = DEFAULT_HWADDR,
    ) -> None:
        self.workdir = Path(workdir)
        self.netns = netns
        self.bridge = bridge
        self.hwaddr = hwaddr
        self.rundir = self.workdir / "run"
        self.dbdir = self.workdir / "db"
        self.logdir = self.workdir / "log"
        self.sysconfdir = self.workdir / "etc"
        self.db_sock = self.rundir / "db.sock"
        self.db_ctl = self.rundir / "ovsdb-server.ctl"
        self.ctl = self.rundir / "ovs-vswitchd.ctl"
        self.log_path = self.logdir / "ovs-vswitchd.log"
        self.procs: dict[str, ProcRef] = {}

    # -- persistence (the lab is torn down by another process) ---------------------------

    def to_json(self) -> dict:
        return {
            "workdir": str(self.workdir),
            "netns": self.netns,
            "bridge": self.bridge,
            "hwaddr": self.hwaddr,
            "procs": {k: v.to_json() for k, v in self.procs.items()},
        }

    @classmethod
    def from_json(cls, d: dict) -> OvsPartner:
        o = cls(
            Path(d["workdir"]),
            d.get("netns"),
            bridge=d.get("bridge", "br0"),
            hwaddr=d.get("hwaddr", DEFAULT_HWADDR),
        )
        o.procs = {k: ProcRef.from_json(v) for k, v in d.get("procs", {}).items()}
        return o

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """Environment that points every OVS default path into the work dir."""
        env = dict(os.environ)
        env.update(
            OVS_RUNDIR=str(self.rundir),
            OVS_DBDIR=str(self.dbdir),
            OVS_LOGDIR=str(self.logdir),
            OVS_SYSCONFDIR=str(self.sysconfdir),
            OVS_PKGDATADIR=str(SCHEMA.parent),
        )
        return env

    def _in_ns(self, argv: list[str]) -> list[str]:
        # `ip netns exec` execs the command in place, so the Popen pid is the daemon's pid.
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    def _spawn(self, name: str, argv: list[str], on_spawn: Callable[[], object] | None) -> ProcRef:
        ref = spawn(self._in_ns(argv), self.logdir / f"{name}.out", self.env, name)
        self.procs[name] = ref
        if on_spawn is not None:
            on_spawn()
        return ref

    def _wait(self, path: Path, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists():
                return
            if not self.procs[name].alive():
                raise OvsError(f"{name} exited early, see {self.logdir}")
            time.sleep(0.02)
        raise OvsError(f"{name} did not create {path} within {timeout}s")

    def start(
        self, timeout: float = 30.0, on_spawn: Callable[[], object] | None = None
    ) -> OvsPartner:
        """Create a fresh database, start both daemons and the bridge; stops them on failure.

        `on_spawn` is called after each daemon starts, so a caller can persist the pids at
        once (a crash between spawn and return must not leave untracked daemons).
        """
        for exe in ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl"):
            if shutil.which(exe) is None:
                raise OvsError(f"{exe} not found: install Debian package openvswitch-switch")
        for d in (self.rundir, self.dbdir, self.logdir, self.sysconfdir):
            d.mkdir(parents=True, exist_ok=True)
        db = self.dbdir / "conf.db"
        if db.exists():
            db.unlink()
        try:
            subprocess.run(
                ["ovsdb-tool", "create", str(db), str(SCHEMA)],
                check=True,
                capture_output=True,
                env=self.env,
            )
            self._spawn(
                "ovsdb-server",
                [
                    "ovsdb-server",
                    str(db),
                    f"--remote=punix:{self.db_sock}",
                    f"--unixctl={self.db_ctl}",
                    f"--pidfile={self.rundir / 'ovsdb-server.pid'}",
                    f"--log-file={self.logdir / 'ovsdb-server.log'}",
                    "--no-chdir",
                    "-vconsole:off",
                ],
                on_spawn,
            )
            self._wait(self.db_sock, "ovsdb-server", timeout)
            self.vsctl("--no-wait", "init")
            self._spawn(
                "ovs-vswitchd",
                [
                    "ovs-vswitchd",
                    f"unix:{self.db_sock}",
                    f"--unixctl={self.ctl}",
                    f"--pidfile={self.rundir / 'ovs-vswitchd.pid'}",
                    f"--log-file={self.log_path}",
                    "--no-chdir",
                    "-vconsole:off",
                ],
                on_spawn,
            )
            self._wait(self.ctl, "ovs-vswitchd", timeout)
            self.vsctl(
                "add-br",
                self.bridge,
                "--",
                "set",
                "bridge",
                self.bridge,
                "datapath_type=netdev",
                f"other-config:hwaddr={self.hwaddr}",
                timeout=timeout,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop exactly our two daemons (vswitchd first, so it releases its ports cleanly)."""
        vs = self.procs.get("ovs-vswitchd")
        if vs is not None and vs.alive():
            try:
                # --cleanup removes the netdev datapath's tap devices too.
                self.appctl("exit", "--cleanup", timeout=5)
            except (OvsError, subprocess.TimeoutExpired):
                pass
            vs.stop()
        db = self.procs.get("ovsdb-server")
        if db is not None:
            db.stop()
        self.procs.clear()

    def alive(self) -> dict[str, bool]:
        return {k: v.alive() for k, v in self.procs.items()}

    # -- commands -------------------------------------------------------------------------

    def _run(self, argv: list[str], timeout: float) -> str:
        r = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=timeout)
        if r.returncode != 0:
            raise OvsError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
        return r.stdout

    def vsctl(self, *args: str, timeout: float = 15.0) -> str:
        """ovs-vsctl against our private database (waits for vswitchd to apply changes)."""
        t = max(1, int(timeout))
        return self._run(
            ["ovs-vsctl", f"--db=unix:{self.db_sock}", f"--timeout={t}", *args], timeout + 5
        )

    # one query about every bond: 512 bonds answer slowly while ovs-vswitchd runs their LACP
    # (a 10 s limit ran out at 512 x 2 under load, issue 19)
    def appctl(self, *args: str, timeout: float = 10.0) -> str:
        """ovs-appctl to our private ovs-vswitchd."""
        return self._run(
            ["ovs-appctl", "-t", str(self.ctl), f"--timeout={max(1, int(timeout))}", *args],
            timeout + 5,
        )

    # -- bonds ----------------------------------------------------------------------------

    def add_bond(
        self,
        name: str,
        members: list[str],
        *,
        lacp_time: str = "fast",
        bond_mode: str = "balance-tcp",
        lacp: str = "active",
        other_config: dict[str, str] | None = None,
    ) -> None:
        """One LACP port over `members` (one or more): lacp=active, lacp-time=fast, balance-tcp.

        Built from raw db commands because `add-bond` refuses a single interface and OVS 3.1
        has no `add-bond-iface`.
        """
        self.vsctl(
            *self._bond_args(
                name,
                members,
                lacp_time=lacp_time,
                bond_mode=bond_mode,
                lacp=lacp,
                other_config=other_config,
            )
        )

    def add_bonds(self, bonds: list[tuple[str, list[str]]], chunk: int = 64) -> None:
        """Many bonds as `add_bond` makes them, `chunk` per ovs-vsctl transaction instead of
        one process each (512 bonds took half a minute that way: issue 19)."""
        for start in range(0, len(bonds), chunk):
            args: list[str] = []
            for b, (name, members) in enumerate(bonds[start : start + chunk]):
                args += self._bond_args(name, members, prefix=f"b{b}")
            self.vsctl(*args)

    def _bond_args(
        self,
        name: str,
        members: list[str],
        *,
        prefix: str = "",
        lacp_time: str = "fast",
        bond_mode: str = "balance-tcp",
        lacp: str = "active",
        other_config: dict[str, str] | None = None,
    ) -> list[str]:
        if not members:
            raise ValueError("a bond needs at least one member")
        oc = {"lacp-time": lacp_time, **(other_config or {})}
        args: list[str] = []
        ids = []
        for i, m in enumerate(members):
            args += ["--", f"--id=@{prefix}i{i}", "create", "interface", f"name={m}"]
            ids.append(f"@{prefix}i{i}")
        args += [
            "--",
            f"--id=@{prefix}p",
            "create",
            "port",
            f"name={name}",
            f"interfaces=[{','.join(ids)}]",
            f"lacp={lacp}",
            f"bond_mode={bond_mode}",
        ]
        args += [f"other_config:{k}={v}" for k, v in oc.items()]
        args += ["--", "add", "bridge", self.bridge, "ports", f"@{prefix}p"]
        return args

    def remove_bond(self, name: str) -> None:
        self.vsctl("--if-exists", "del-port", self.bridge, name)

    def add_member(self, bond: str, iface: str) -> None:
        self.vsctl(
            "--",
            "--id=@i",
            "create",
            "interface",
            f"name={iface}",
            "--",
            "add",
            "port",
            bond,
            "interfaces",
            "@i",
        )

    def remove_member(self, bond: str, iface: str) -> None:
        self.vsctl(
            "--",
            "--id=@i",
            "get",
            "interface",
            iface,
            "--",
            "remove",
            "port",
            bond,
            "interfaces",
            "@i",
        )

    def bonds(self) -> list[str]:
        return [p for p in self.vsctl("list-ports", self.bridge).split() if p]

    def bond_members(self, bond: str) -> list[str]:
        """Interface names of a bond, from the database (not from vswitchd's view)."""
        uuids = self.vsctl("get", "port", bond, "interfaces").strip().strip("[]")
        args: list[str] = []
        for u in filter(None, (x.strip() for x in uuids.split(","))):
            args += ["--", "get", "interface", u, "name"]
        if not args:
            return []
        return [n.strip().strip('"') for n in self.vsctl(*args).split()]

    # -- status ---------------------------------------------------------------------------

    def lacp_show(self, bond: str | None = None) -> dict[str, dict]:
        return parse_lacp_show(
            self.appctl("lacp/show", *([bond] if bond else []), timeout=10 if bond else WHOLE_S)
        )

    def lacp_stats(self, bond: str | None = None) -> dict[str, dict[str, dict[str, int]]]:
        return parse_lacp_stats(
            self.appctl(
                "lacp/show-stats", *([bond] if bond else []), timeout=10 if bond else WHOLE_S
            )
        )

    def bond_show(self, bond: str | None = None) -> dict[str, dict]:
        return parse_bond_show(
            self.appctl("bond/show", *([bond] if bond else []), timeout=10 if bond else WHOLE_S)
        )

    # -- flap signal ----------------------------------------------------------------------

    def log_offset(self) -> int:
        """Current end of the vswitchd log; pass it to member_events() later."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def member_events(self, since: int = 0) -> list[MemberEvent]:
        """`member X: enabled|disabled` lines written after byte offset `since`."""
        return read_member_events(self.log_path, since)[0]


def read_member_events(path: Path, since: int = 0) -> tuple[list[MemberEvent], int]:
    """Member events in `path` after byte `since`, and the offset to continue from.

    Only complete lines are consumed, so a line being written is picked up next time.
    """
    try:
        with open(path, "rb") as f:
            f.seek(since)
            data = f.read()
    except FileNotFoundError:
        return [], since
    end = data.rfind(b"\n") + 1
    return parse_member_events(data[:end].decode(errors="replace")), since + end
