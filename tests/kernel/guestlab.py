"""The kernel tier's lab, inside the VM: smaller than teamd_lab.Lab, with stock teamd.

Two namespaces joined by veth pairs: `kdut` holds the members `Ethernet0, 4, ...` and our shim
(which creates the team netdevs `PortChannel000N`); `kptnr` holds stock libteam `teamd` per LAG
(`bondN`, LACP active, fast rate, ethtool link watch). A private redis-server on a unix socket
holds CONFIG_DB as `orchestrator/lab/topology.py` writes it. Every long-lived helper is a
separate process (nsprobe.py): the DUT recorder, the partner monitor and the traffic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from teamd_lab import netns
from teamd_lab.procs import ProcRef, spawn
from teamd_lab.redis_server import RedisServer
from teamd_lab.topology import (
    CONFIG_DB,
    CONFIG_DB_INITIALIZED,
    DUT_SYSTEM_MAC,
    PARTNER_SYSTEM_MAC,
    Member,
    config_db_hashes,
    dut_port_mac,
    partner_port_mac,
    plan,
)

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
DUT_NS, PTNR_NS = "kdut", "kptnr"
DUT_IP, PTNR_IP = "192.0.2.1", "192.0.2.2"  # TEST-NET-1, only inside the guest's namespaces


# The guest run as a whole must end (teardown, logs copied back) before the VM is killed:
# run_tier.py passes a budget. A wait never gets less than its normal duration because the
# budget is low (that turned a slow-but-correct run into a failed assertion); when the budget is
# truly exhausted the whole tier stops as "out of time", which run_tier.py reports in one line.
BUDGET_END = time.monotonic() + float(os.environ.get("KERNEL_TIER_BUDGET_S", "1e9"))
OUT_OF_TIME_FILE = "out-of-time.json"
T_IMPORT = time.monotonic()


def budget_left() -> float:
    return BUDGET_END - time.monotonic()


def out_of_time(doing: str) -> None:
    """Stop the session (fixtures still tear down) and leave a marker for run_tier.py.

    Not an assertion: the product did nothing wrong, the tier's time limit was too small for
    this machine today.
    """
    import pytest

    spent = time.monotonic() - T_IMPORT
    out = os.environ.get("VM_RESULTS_DIR")
    if out:
        Path(out, OUT_OF_TIME_FILE).write_text(
            json.dumps({"doing": doing, "guest_seconds": round(spent, 1)})
        )
    pytest.exit(
        f"kernel tier: out of time after {spent:.0f} s in the guest while {doing}; "
        "raise KERNEL_TIER_TIMEOUT",
        returncode=3,
    )


def check_budget(doing: str) -> None:
    if budget_left() <= 0:
        out_of_time(doing)


def wait_for(pred: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    check_budget(f"waiting for {what}")
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = pred()
        except Exception as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        check_budget(f"waiting for {what}")
        time.sleep(every)


def teamd_conf(dev: str, ports: list[str], hwaddr: str) -> dict[str, Any]:
    """What teammgrd gives teamd for `fast_rate true` (hld §13.5)."""
    return {
        "device": dev,
        "hwaddr": hwaddr,
        "runner": {
            "name": "lacp",
            "active": True,
            "fast_rate": True,
            "min_ports": 1,
            "tx_hash": ["eth", "ipv4", "ipv6"],
        },
        "link_watch": {"name": "ethtool"},
        "ports": {p: {} for p in ports},
    }


def pid_gone(pid: int) -> bool:
    """Exited. A standby started by the in-process controller is OUR child: reap it, or its
    zombie keeps /proc/PID alive for ever."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


class GuestLab:
    def __init__(self, workdir: Path, lags: int = 2, members: int = 2) -> None:
        self.workdir = Path(workdir)
        self.members: list[Member] = plan(lags, members)
        self.lags = sorted({m.lag for m in self.members})
        self.redis: RedisServer | None = None
        self.procs: dict[str, ProcRef] = {}
        self.record = self.workdir / "dataplane.jsonl"
        self.warmboot_dir = self.workdir / "warmboot"  # teamd's -L (hld §6.2)
        self.files = {n: self.workdir / f"{n}.jsonl" for n in ("dut", "partner", "traffic")}
        self.shim_seq = 0
        self.extra_ns: list[str] = []  # namespaces a test added (down() deletes them)

    # ---- set-up ----------------------------------------------------------------------------
    def up(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "ctl").mkdir(exist_ok=True)
        for ns in (DUT_NS, PTNR_NS):
            netns.create_ns(ns)
        for m in self.members:
            # partner ends down: teamd (like the kernel) wants a port down before enslaving it
            netns.create_veth(
                DUT_NS,
                m.dut_port,
                PTNR_NS,
                m.partner_port,
                mac_a=dut_port_mac(m.k),
                mac_b=partner_port_mac(m.k),
                up=False,
            )
            netns.set_link(DUT_NS, m.dut_port, True)
        self.redis = RedisServer(self.workdir / "redis").start()
        self.write_config(self.lags)

    def start_partner(
        self, teamd_lags: list[str] | None = None, bonding_lags: tuple[str, ...] = ()
    ) -> None:
        """Stock teamd per LAG (or Linux bonding, 802.3ad with lacp_rate fast, for those in
        `bonding_lags`), once our side has enslaved its members (as on a switch whose
        PortChannels are configured before the peer comes up)."""
        with IPRoute(netns=DUT_NS, flags=0) as ipr:

            def enslaved() -> bool:
                masters = {
                    lk.get_attr("IFLA_IFNAME"): lk.get_attr("IFLA_MASTER")
                    for lk in ipr.link("dump")
                }
                teams = {lk.get_attr("IFLA_IFNAME"): lk["index"] for lk in ipr.link("dump")}
                return all(
                    teams.get(m.lag) and masters.get(m.dut_port) == teams[m.lag]
                    for m in self.members
                )

            wait_for(enslaved, 60, "our team netdevs with every member enslaved")
        for lag in bonding_lags:
            self.start_bonding(lag)
        for lag in self.lags if teamd_lags is None else teamd_lags:
            self.start_teamd(
                PTNR_NS,
                self.bond(lag),
                [m.partner_port for m in self.members if m.lag == lag],
                PARTNER_SYSTEM_MAC,
            )
            # The partner is a switch too: its teammgrd sets every PortChannel's MTU and admin
            # state right after starting teamd. This matters: stock teamd sends no LACPDU while
            # its team netdev is admin down (yet it receives ours: its ports show current and
            # selected), so a partner LAG left down keeps ours `defaulted` for ever.
            self.link_up(PTNR_NS, self.bond(lag), mtu=9100)
        self.set_ip(PTNR_NS, self.bond(self.lags[0]), PTNR_IP)

    def start_bonding(self, lag: str) -> None:
        """A Linux bonding partner: what the kernel's own 802.3ad speaker makes of us."""
        dev = self.bond(lag)
        ip = ["ip", "-n", PTNR_NS, "link"]
        subprocess.run(
            [
                *ip,
                "add",
                dev,
                "type",
                "bond",
                "mode",
                "802.3ad",
                "lacp_rate",
                "fast",
                "miimon",
                "100",
            ],
            check=True,
            timeout=20,
        )
        for m in self.members:
            if m.lag == lag:
                subprocess.run([*ip, "set", m.partner_port, "down"], check=True, timeout=20)
                subprocess.run([*ip, "set", m.partner_port, "master", dev], check=True, timeout=20)
                subprocess.run([*ip, "set", m.partner_port, "up"], check=True, timeout=20)
        subprocess.run([*ip, "set", dev, "mtu", "9100", "up"], check=True, timeout=20)

    def bond(self, lag: str) -> str:
        return f"bond{int(lag[11:])}"

    def db(self, n: int = CONFIG_DB) -> Any:
        assert self.redis is not None
        return self.redis.client(n)

    @property
    def redis_url(self) -> str:
        assert self.redis is not None
        return self.redis.url

    def write_config(self, lags: list[str]) -> None:
        ms = [m for m in self.members if m.lag in lags]
        r = self.db()
        for key, fields in config_db_hashes(ms, system_mac=DUT_SYSTEM_MAC).items():
            r.hset(key, mapping=fields)
        r.set(CONFIG_DB_INITIALIZED, "1")

    def remove_config(self, lag: str) -> None:
        r = self.db()
        for m in self.members:
            if m.lag == lag:
                r.delete(f"PORTCHANNEL_MEMBER|{lag}|{m.dut_port}")
        r.delete(f"PORTCHANNEL|{lag}")

    def nsexec(self, ns: str, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{ns}", "--", *argv]

    def spawn(self, name: str, ns: str, argv: list[str]) -> ProcRef:
        ref = spawn(self.nsexec(ns, argv), self.workdir / f"{name}.log", dict(os.environ), name)
        self.procs[name] = ref
        return ref

    def start_teamd(
        self, ns: str, dev: str, ports: list[str], hwaddr: str, extra: tuple[str, ...] = ()
    ) -> None:
        conf = self.workdir / f"{dev}.conf"
        conf.write_text(json.dumps(teamd_conf(dev, ports, hwaddr)))
        p = subprocess.run(
            self.nsexec(ns, ["teamd", "-d", "-f", str(conf), *extra]),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert p.returncode == 0, f"teamd {dev} {extra}: {p.stderr[-1000:]}"

    def stop_teamd(self, ns: str, dev: str) -> None:
        """SIGTERM by pid file, as teammgrd does; wait until it is gone."""
        pid = int(Path(f"/run/teamd/{dev}.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, f"teamd {dev} to exit")

    def link_up(self, ns: str, dev: str, mtu: int | None = None) -> None:
        """Admin up (and MTU), as teammgrd does for a PortChannel once its teamd runs."""
        with IPRoute(netns=ns, flags=0) as ipr:
            idx = wait_for(lambda: ipr.link_lookup(ifname=dev), 20, f"{dev} in {ns}")[0]
            if mtu:
                ipr.link("set", index=idx, mtu=mtu)
            ipr.link("set", index=idx, state="up")

    def set_ip(self, ns: str, dev: str, ip: str) -> None:
        """Admin up plus an address (what intfmgrd would do for a PortChannel interface)."""
        with IPRoute(netns=ns, flags=0) as ipr:
            idx = wait_for(lambda: ipr.link_lookup(ifname=dev), 20, f"{dev} in {ns}")[0]
            ipr.link("set", index=idx, state="up")
            if not any(a.get_attr("IFA_ADDRESS") == ip for a in ipr.get_addr(index=idx)):
                ipr.addr("add", index=idx, address=ip, prefixlen=24)

    # ---- our shim ----------------------------------------------------------------------------
    def shim_argv(self, name: str = "teamd") -> list[str]:
        return [
            str(VENV_BIN / "teamd-shim"),
            "--redis",
            self.redis_url,
            "--ctl-dir",
            str(self.workdir / "ctl"),
            "--name",
            name,
            "--dataplane",
            "team",
            "--record",
            str(self.record),
            "--warmboot-dir",
            str(self.warmboot_dir),
        ]

    def start_shim(self) -> ProcRef:
        self.shim_seq += 1
        return self.spawn(f"shim-{self.shim_seq}", DUT_NS, self.shim_argv())

    def active_pid(self) -> int:
        owner = self.db(6).hgetall("TEAMD_OWNER_TABLE|teamd")
        return int(self.db(6).hget(f"TEAMD_SHIM_INSTANCE|{owner['owner']}", "pid"))

    def warm_restart_inproc(self) -> dict[str, Any]:
        """`warm-restart teamd --json` minus the CLI's own interpreter start: the command's body
        (orchestrator.handover.Controller.restart) run in this process. A fresh interpreter costs
        ~6 s per run in the guest; the standby shim is still a new process, as on a switch."""
        from orchestrator.handover import Controller
        from teamd_shim.db import sonic_db

        cpu = time.process_time()
        out = Controller(sonic_db.resolve(self.redis_url)).restart(timeout=60).to_json()
        out["controller_cpu_s"] = round(time.process_time() - cpu, 2)
        out["exit"] = out["code"]
        return out

    # ---- observers -------------------------------------------------------------------------
    def start_observers(self, rate: float = 100.0, wait: bool = True) -> None:
        probe = [sys.executable, str(HERE / "nsprobe.py")]
        self.spawn(
            "dut-recorder",
            DUT_NS,
            [
                *probe,
                "dut-recorder",
                str(self.files["dut"]),
                *self.lags,
                *(m.dut_port for m in self.members),
            ],
        )
        bonds = [self.bond(lag) for lag in self.lags]
        self.spawn(
            "partner-monitor",
            PTNR_NS,
            [*probe, "partner-monitor", str(self.files["partner"]), *bonds],
        )
        self.spawn(
            "traffic",
            DUT_NS,
            [*probe, "traffic", str(self.files["traffic"]), str(rate), DUT_IP, PTNR_IP, PTNR_NS],
        )
        if wait:
            self.wait_observers()

    def wait_observers(self) -> None:
        for name, ev in (
            ("dut", "ready-options"),
            ("dut", "ready-links"),
            ("partner", "ready-links"),
            ("traffic", "traffic-start"),
        ):
            wait_for(
                lambda n=name, e=ev: any(r["ev"] == e for r in self.read(n)),
                60,
                f"{name} observer to start",
            )

    def read(self, what: str) -> list[dict[str, Any]]:
        path = self.files[what]
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line being written
        return out

    # ---- tear-down -------------------------------------------------------------------------
    def down(self) -> None:
        for ref in self.procs.values():
            try:
                ref.stop(3.0)
            except Exception:
                pass
        for dev in ("bond1", "bond2", "PortChannel0001", "PortChannel0002"):
            pidf = Path(f"/run/teamd/{dev}.pid")
            if pidf.exists():
                try:
                    os.kill(int(pidf.read_text()), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        if self.redis is not None:
            self.redis.stop()
        for ns in (DUT_NS, PTNR_NS, *self.extra_ns):
            netns.delete_ns(ns)
