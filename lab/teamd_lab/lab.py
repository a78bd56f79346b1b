"""The embedded host-tier lab: DUT namespace, OVS partner namespace, veths, redis, shim.

Used by `teamd-lab up/status/down` and by integration tests. `up()` records every
thing it creates in `<workdir>/lab.json` *before* moving on, so that `Lab.load(workdir).down()`
from another process removes exactly that (and nothing else), also after a crash half-way
through `up()` or when some parts are already gone.

lab.json: version, prefix, workdir, phase (starting|up|down|down-with-errors), namespaces
{dut, partner}, created_namespaces, redis {url, socket, proc}, ovs (OvsPartner.to_json: workdir,
netns, bridge, hwaddr, procs), system_mac, partner_mac, lags {PortChannelNNNN: {index, bond}},
members [{lag, k, dut_port, partner_port, bond}], veths [{ns_a, a, ns_b, b, mac_a, mac_b}],
next_k, shims {role: {cmd, log, proc}}, recorder {out, ifaces, proc} | null, records [paths],
down_errors. Every `proc` is {pid, starttime, name}: the start time guards against pid reuse.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

from teamd_lab import netns
from teamd_lab.ovs import OvsPartner
from teamd_lab.procs import ProcRef, spawn
from teamd_lab.redis_server import RedisServer
from teamd_lab.topology import (
    CONFIG_DB,
    CONFIG_DB_INITIALIZED,
    CONFIG_DB_SEPARATOR,
    DUT_SYSTEM_MAC,
    PARTNER_SYSTEM_MAC,
    Member,
    bond_name,
    config_db_hashes,
    dut_port_mac,
    lag_index,
    lag_name,
    member,
    partner_port_mac,
    plan,
)
from teamd_shim.db.redis_decoded import fields as redis_fields
from teamd_shim.db.redis_decoded import hgetall, keys
from teamd_shim.io.identity import host_id

STATE_FILE = "lab.json"
VERSION = 1
_REPO_ROOT = Path(__file__).resolve().parents[2]


class LabError(RuntimeError):
    pass


def start_recorder_process(
    ns: str,
    ifaces: list[str],
    out: Path,
    log: Path,
    env: dict[str, str],
    timeout: float = 10.0,
    on_spawn: Callable[[ProcRef], None] = lambda ref: None,
) -> ProcRef:
    """The partner-side PDU recorder (orchestrator/lab/recorder.py) in namespace `ns`, once
    it has opened every port (its "start" line); `env` must let it import the package."""
    out.write_bytes(b"")
    argv = [
        "ip",
        "netns",
        "exec",
        ns,
        sys.executable,
        "-m",
        "teamd_lab.recorder",
        "--ifaces",
        ",".join(ifaces),
        "--out",
        str(out),
    ]
    ref = spawn(argv, log, env, "recorder")  # `ip netns exec` execs in place: the pid is ours
    on_spawn(ref)
    deadline = time.monotonic() + timeout
    while b'"event":"start"' not in out.read_bytes():
        if not ref.alive():
            raise LabError(f"recorder exited early, see {log}")
        if time.monotonic() > deadline:
            raise LabError(f"recorder did not start in time, see {log}")
        time.sleep(0.02)
    return ref


class LabExistsError(LabError):
    """A lab with this prefix (or in this work dir) is already up."""


class LabNotFoundError(LabError, FileNotFoundError):
    """No lab.json in the given work dir."""


class Lab:
    """One lab instance; see module docstring. All names derive from `prefix`."""

    def __init__(self, workdir: Path, prefix: str = "wr") -> None:
        self.workdir = Path(workdir).resolve()
        self.prefix = prefix
        self.dut_ns = f"{prefix}-dut"
        self.partner_ns = f"{prefix}-ptnr"
        self.state: dict = self._fresh_state()
        self.ovs: OvsPartner | None = None
        self._redis: RedisServer | None = None

    # -- persistence ----------------------------------------------------------------------

    def _fresh_state(self) -> dict:
        return {
            "version": VERSION,
            "prefix": self.prefix,
            "workdir": str(self.workdir),
            "phase": "new",
            "namespaces": {"dut": self.dut_ns, "partner": self.partner_ns},
            "created_namespaces": [],
            "redis": None,
            "ovs": None,
            "system_mac": DUT_SYSTEM_MAC,
            "partner_mac": PARTNER_SYSTEM_MAC,
            "lags": {},
            "members": [],
            "veths": [],
            "next_k": 0,
            "shims": {},
            "recorder": None,
            "records": [],
        }

    @property
    def state_path(self) -> Path:
        return self.workdir / STATE_FILE

    def _save(self) -> None:
        if self.ovs is not None:
            self.state["ovs"] = self.ovs.to_json()
        tmp = self.state_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.state, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.state_path)

    @classmethod
    def load(cls, workdir: Path) -> Lab:
        """Attach to a lab described by `<workdir>/lab.json` (possibly made by another process)."""
        path = Path(workdir) / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabNotFoundError(f"no lab in {workdir} ({STATE_FILE} missing)") from None
        except json.JSONDecodeError as e:
            raise LabError(f"{path} is not valid JSON: {e}") from None
        lab = cls(Path(state["workdir"]), state["prefix"])
        lab.state = state
        if state.get("ovs"):
            lab.ovs = OvsPartner.from_json(state["ovs"])
        return lab

    # -- accessors ------------------------------------------------------------------------

    @property
    def ptnr_ns(self) -> str:
        """Alias of partner_ns."""
        return self.partner_ns

    def ovs_appctl_hint(self) -> str:
        """The ovs-appctl prefix that reaches this lab's private ovs-vswitchd."""
        ctl = self.ovs.ctl if self.ovs is not None else self.workdir / "ovs/run/ovs-vswitchd.ctl"
        return f"ovs-appctl -t {ctl}"

    @property
    def redis_socket(self) -> Path:
        return self.workdir / "redis.sock"

    @property
    def redis_url(self) -> str:
        return f"unix://{self.redis_socket}"

    def redis(self, db: int = CONFIG_DB) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.redis_socket), db=db, decode_responses=True)

    def _members(self) -> list[Member]:
        return [Member.from_json(m) for m in self.state["members"]]

    def members(self) -> list[tuple[str, str, str]]:
        """(lag, dut_port, partner_port) for every member, in creation order."""
        return [(m.lag, m.dut_port, m.partner_port) for m in self._members()]

    def lags(self) -> list[str]:
        return list(self.state["lags"])

    def _member(self, dut_port: str) -> Member:
        for m in self._members():
            if m.dut_port == dut_port:
                return m
        raise KeyError(f"{dut_port} is not a lab member")

    # -- up -------------------------------------------------------------------------------

    def _check_free(self) -> None:
        busy = [ns for ns in (self.dut_ns, self.partner_ns) if netns.ns_exists(ns)]
        if busy:
            raise LabExistsError(
                f"a lab with prefix {self.prefix!r} already exists (namespace {busy[0]} present);"
                f" tear it down first (`teamd-lab down`) or pick another prefix"
            )
        if self.state_path.exists():
            old = json.loads(self.state_path.read_text())
            if old.get("phase") not in ("down", None):
                raise LabExistsError(
                    f"{self.state_path} describes a lab (prefix {old.get('prefix')!r}, phase "
                    f"{old.get('phase')!r}) that was not taken down; run down() on it first"
                )

    def up(
        self,
        lags: int,
        members: int,
        shim_cmd: list[str] | None = None,
        *,
        recorder: bool = False,
        dut_netns_pid: int | None = None,
    ) -> Lab:
        """Build the lab; on any failure, remove what was built and re-raise.

        `dut_netns_pid`: the DUT side is that process's network namespace (a holder
        container's, for the docker runtime) instead of a new one."""
        self._check_free()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state = self._fresh_state()
        self.state["phase"] = "starting"
        self._save()
        try:
            self._start_redis()
            for ns in (self.dut_ns, self.partner_ns):
                if ns == self.dut_ns and dut_netns_pid:
                    netns.attach_ns(ns, dut_netns_pid)
                else:
                    netns.create_ns(ns)
                self.state["created_namespaces"].append(ns)
                self._save()
            self.ovs = OvsPartner(self.workdir / "ovs", self.partner_ns, hwaddr=PARTNER_SYSTEM_MAC)
            self._save()
            self.ovs.start(on_spawn=self._save)
            self._save()
            self.redis().hset(
                f"DEVICE_METADATA{CONFIG_DB_SEPARATOR}localhost", mapping={"mac": DUT_SYSTEM_MAC}
            )
            by_lag: dict[int, list[Member]] = {}
            for m in plan(lags, members):
                by_lag.setdefault(lag_index(m.lag), []).append(m)
            for i in by_lag:
                self.state["lags"][lag_name(i)] = {"index": i, "bond": bond_name(i)}
            self._create_members([m for ms in by_lag.values() for m in ms])
            if recorder:  # before the bonds exist, so it covers the very first PDU
                self.start_recorder()
            self.ovs.add_bonds(
                [(bond_name(i), [m.partner_port for m in ms]) for i, ms in by_lag.items()]
            )
            self._write_config(
                [m for ms in by_lag.values() for m in ms], [lag_name(i) for i in by_lag]
            )
            # As `config load`: the whole initial config first, then the flag readers wait for.
            self.redis().set(CONFIG_DB_INITIALIZED, "1")
            if shim_cmd:
                self.start_shim(shim_cmd, role="active")
            self.state["phase"] = "up"
            self._save()
        except BaseException:
            self.down()
            raise
        return self

    def _start_redis(self) -> None:
        # persist: a restarted server comes back with CONFIG_DB, as SONiC's database does
        self._redis = RedisServer(self.workdir, persist=True).start()
        assert self._redis.proc is not None
        self.state["redis"] = {
            "url": self.redis_url,
            "socket": str(self.redis_socket),
            "proc": ProcRef.of(self._redis.proc.pid, "redis-server").to_json(),
        }
        self._save()

    def stop_redis(self) -> None:
        """Stop the lab's redis-server (SIGTERM: it saves its data first)."""
        if self.state["redis"] is not None:
            ProcRef.from_json(self.state["redis"]["proc"]).stop(5.0)
            if self._redis is not None and self._redis.proc is not None:
                self._redis.proc.wait()
            self._redis = None
            self.state["redis"] = None
            self._save()

    def start_redis(self) -> None:
        if self.state["redis"] is not None:
            raise LabError("redis is already running")
        self._start_redis()

    def restart_redis(self, down_for: float = 0.0) -> None:
        """Stop redis, stay down `down_for` seconds, start it again on the same socket."""
        self.stop_redis()
        time.sleep(down_for)
        self.start_redis()

    def _create_members(self, ms: list[Member]) -> None:
        """All pairs at once, recorded once (a lab of 1024 members rewrote its state file 1024
        times, each longer); `down()` finds them in the record or in the namespaces it
        deletes."""
        made = netns.create_veths(
            [
                netns.Veth(
                    self.dut_ns,
                    m.dut_port,
                    self.partner_ns,
                    m.partner_port,
                    dut_port_mac(m.k),
                    partner_port_mac(m.k),
                )  # fmt: skip
                for m in ms
            ]
        )
        self.state["veths"] += [v.to_json() for v in made]
        self.state["members"] += [m.to_json() for m in ms]
        self.state["next_k"] = max([self.state["next_k"], *(m.k + 1 for m in ms)])
        self._save()

    def _create_member(self, m: Member) -> None:
        v = netns.create_veth(
            self.dut_ns,
            m.dut_port,
            self.partner_ns,
            m.partner_port,
            mac_a=dut_port_mac(m.k),
            mac_b=partner_port_mac(m.k),
        )
        self.state["veths"].append(v.to_json())
        self.state["members"].append(m.to_json())
        self.state["next_k"] = max(self.state["next_k"], m.k + 1)
        self._save()

    def _write_config(self, ms: list[Member], lags: list[str]) -> None:
        pipe = self.redis().pipeline()
        for key, fields in config_db_hashes(ms, lags=lags).items():
            if key.startswith("DEVICE_METADATA"):
                continue
            pipe.hset(key, mapping=redis_fields(fields))
        pipe.execute()

    def _create_lag(self, i: int, ms: list[Member]) -> None:
        name = lag_name(i)
        self.state["lags"][name] = {"index": i, "bond": bond_name(i)}
        self._save()
        for m in ms:
            self._create_member(m)
        assert self.ovs is not None
        self.ovs.add_bond(bond_name(i), [m.partner_port for m in ms])
        # CONFIG_DB last: when the shim sees the LAG, its ports and partner already exist.
        self._write_config(ms, [name])

    # -- runtime changes ------------------------------------------------------------------

    def add_lag(self, members: int = 2, index: int | None = None) -> str:
        """A new LAG (next free index unless given) with `members` new members."""
        i = (
            index
            if index is not None
            else max([v["index"] for v in self.state["lags"].values()], default=0) + 1
        )
        if lag_name(i) in self.state["lags"]:
            raise LabError(f"{lag_name(i)} already exists")
        k0 = self.state["next_k"]
        self._create_lag(i, [member(i, k0 + j) for j in range(members)])
        return lag_name(i)

    def remove_lag(self, lag: str) -> None:
        """CONFIG_DB first (so the shim lets go), then the OVS bond, then the veths."""
        if lag not in self.state["lags"]:
            raise KeyError(f"{lag} is not a lab LAG")
        ms = [m for m in self._members() if m.lag == lag]
        r = self.redis()
        sep = CONFIG_DB_SEPARATOR
        r.delete(
            *[f"PORTCHANNEL_MEMBER{sep}{lag}{sep}{m.dut_port}" for m in ms],
            f"PORTCHANNEL{sep}{lag}",
        )
        assert self.ovs is not None
        self.ovs.remove_bond(self.state["lags"][lag]["bond"])
        for m in ms:
            self._delete_member_veth(m)
        del self.state["lags"][lag]
        self._save()

    def add_member(self, lag: str) -> tuple[str, str, str]:
        """A new veth pair joined to `lag` on both sides; returns (lag, dut_port, partner_port)."""
        if lag not in self.state["lags"]:
            raise KeyError(f"{lag} is not a lab LAG")
        m = member(self.state["lags"][lag]["index"], self.state["next_k"])
        self._create_member(m)
        assert self.ovs is not None
        if any(x.lag == lag and x.k != m.k for x in self._members()):
            self.ovs.add_member(m.bond, m.partner_port)
        else:
            self.ovs.add_bond(m.bond, [m.partner_port])
        self._write_config([m], [])
        return (m.lag, m.dut_port, m.partner_port)

    def remove_member(self, dut_port: str) -> None:
        """Remove one member from CONFIG_DB, OVS (the bond too if it was the last) and veth."""
        m = self._member(dut_port)
        sep = CONFIG_DB_SEPARATOR
        self.redis().delete(f"PORTCHANNEL_MEMBER{sep}{m.lag}{sep}{m.dut_port}")
        assert self.ovs is not None
        if any(x.lag == m.lag and x.k != m.k for x in self._members()):
            self.ovs.remove_member(m.bond, m.partner_port)
        else:
            self.ovs.remove_bond(m.bond)  # an OVS port cannot have zero interfaces
        self._delete_member_veth(m)

    def _delete_member_veth(self, m: Member) -> None:
        for v in list(self.state["veths"]):
            if v["a"] == m.dut_port:
                netns.delete_veth(netns.Veth.from_json(v))
                self.state["veths"].remove(v)
        self.state["members"] = [x for x in self.state["members"] if x["dut_port"] != m.dut_port]
        self._save()

    def set_member_link(self, dut_port: str, up: bool) -> None:
        """Set the DUT-side veth of a member down/up (the partner sees carrier loss)."""
        self._member(dut_port)
        netns.set_link(self.dut_ns, dut_port, up)

    # -- processes in the namespaces ------------------------------------------------------

    def _ns_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env.update(
            WR_LAB_WORKDIR=str(self.workdir),
            WR_LAB_REDIS_URL=self.redis_url,
            WR_LAB_REDIS_SOCKET=str(self.redis_socket),
            WR_LAB_DUT_NS=self.dut_ns,
            WR_LAB_PREFIX=self.prefix,
        )
        return env

    def _spawn(self, ns: str, argv: list[str], log: Path, name: str) -> ProcRef:
        # `ip netns exec` execs in place, so the spawned pid is the command's own pid.
        return spawn(["ip", "netns", "exec", ns, *argv], log, self._ns_env(), name)

    def shim_argv(self, shim_cmd: list[str]) -> list[str]:
        """Expand {redis_url}, {redis_socket}, {workdir}, {dut_ns} tokens in the command."""
        subst = {
            "{redis_url}": self.redis_url,
            "{redis_socket}": str(self.redis_socket),
            "{workdir}": str(self.workdir),
            "{dut_ns}": self.dut_ns,
        }
        out = []
        for a in shim_cmd:
            for k, v in subst.items():
                a = a.replace(k, v)
            out.append(a)
        return out

    def start_shim(self, shim_cmd: list[str], role: str = "active") -> ProcRef:
        """Start a shim inside the DUT namespace, output to `<workdir>/shim-<role>.log`."""
        if (
            role in self.state["shims"]
            and ProcRef.from_json(self.state["shims"][role]["proc"]).alive()
        ):
            raise LabError(f"shim {role!r} is already running")
        argv = self.shim_argv(shim_cmd)
        log = self.workdir / f"shim-{role}.log"
        ref = self._spawn(self.dut_ns, argv, log, f"shim-{role}")
        self.state["shims"][role] = {"cmd": argv, "log": str(log), "proc": ref.to_json()}
        self._save()
        return ref

    def stop_shim(self, role: str = "active", timeout: float = 5.0) -> None:
        s = self.state["shims"].pop(role, None)
        if s is not None:
            ProcRef.from_json(s["proc"]).stop(timeout)
            self._save()

    def shim_proc(self, role: str = "active") -> ProcRef | None:
        s = self.state["shims"].get(role)
        return ProcRef.from_json(s["proc"]) if s else None

    def start_recorder(self, ifaces: list[str] | None = None, timeout: float = 10.0) -> Path:
        """Record DUT PDUs arriving at the partner ports (default: all current members)."""
        if self.state["recorder"] is not None:
            raise LabError("the recorder is already running")
        ifaces = ifaces or [m.partner_port for m in self._members()]
        out = self.workdir / f"pdus-{len(self.state['records']) + 1:03d}.jsonl"

        def started(ref: ProcRef) -> None:  # recorded before the wait: down() must find it
            self.state["recorder"] = {"out": str(out), "ifaces": ifaces, "proc": ref.to_json()}
            self.state["records"].append(str(out))
            self._save()

        start_recorder_process(
            self.partner_ns,
            ifaces,
            out,
            self.workdir / "recorder.log",
            self._ns_env(),
            timeout,
            started,
        )
        return out

    def stop_recorder(self) -> Path | None:
        """Stop the recorder (SIGTERM, it flushes) and return its record file."""
        rec = self.state["recorder"]
        if rec is None:
            return None
        ProcRef.from_json(rec["proc"]).stop()
        self.state["recorder"] = None
        self._save()
        return Path(rec["out"])

    # -- status / down --------------------------------------------------------------------

    def registered_shims(self) -> dict[str, ProcRef]:
        """Shims that registered in this lab's redis: after warm restarts the running ones are
        not the process `up()` started, and `down()` must stop them too."""
        if not self.state.get("redis"):
            return {}
        try:
            r = self.redis(6)
            out = {}
            for key in keys(r, "TEAMD_SHIM_INSTANCE|*"):
                rec = hgetall(r, key)
                if rec.get("host", host_id()) != host_id():
                    continue  # in a container: its pid is not ours to signal
                if rec.get("pid", "").isdigit() and rec.get("starttime", "").isdigit():
                    ref = ProcRef(int(rec["pid"]), int(rec["starttime"]), key.split("|", 1)[1])
                    if ref.alive():
                        out[ref.name] = ref
            return out
        except redis.exceptions.RedisError:
            return {}

    def processes(self) -> dict[str, ProcRef]:
        procs: dict[str, ProcRef] = {}
        if self.state.get("redis"):
            procs["redis-server"] = ProcRef.from_json(self.state["redis"]["proc"])
        if self.ovs is not None:
            procs.update(self.ovs.procs)
        for role, s in self.state["shims"].items():
            procs[f"shim-{role}"] = ProcRef.from_json(s["proc"])
        for name, ref in self.registered_shims().items():
            procs[f"shim {name}"] = ref
        if self.state["recorder"]:
            procs["recorder"] = ProcRef.from_json(self.state["recorder"]["proc"])
        return procs

    def status(self) -> dict:
        """A JSON-able summary; OVS errors are reported, not raised."""
        st: dict = {
            "prefix": self.prefix,
            "phase": self.state["phase"],
            "workdir": str(self.workdir),
            "redis_url": self.redis_url,
            "namespaces": {ns: netns.ns_exists(ns) for ns in (self.dut_ns, self.partner_ns)},
            "members": [list(m) for m in self.members()],
            "processes": {
                k: {"pid": v.pid, "alive": v.alive()} for k, v in self.processes().items()
            },
            "recorder": self.state["recorder"]["out"] if self.state["recorder"] else None,
        }
        if (
            self.ovs is not None
            and self.ovs.procs.get("ovs-vswitchd")
            and self.ovs.procs["ovs-vswitchd"].alive()
        ):
            try:
                st["ovs"] = {
                    "bonds": {
                        b: {"lacp_status": v.get("lacp_status"), "members": v["members"]}
                        for b, v in self.ovs.bond_show().items()
                    },
                    "lacp": {
                        b: {
                            "negotiated": v.get("negotiated"),
                            "members": {
                                m: f"{x['status']} {'attached' if x['attached'] else 'detached'}"
                                for m, x in v["members"].items()
                            },
                        }
                        for b, v in self.ovs.lacp_show().items()
                    },
                    "lacp_stats": self.ovs.lacp_stats(),
                }
            except Exception as e:  # status must work on a half-broken lab
                st["ovs_error"] = str(e)
        return st

    _Step = Callable[..., bool]

    def _down_processes(self, step: _Step) -> None:
        for name, ref in self.registered_shims().items():
            step(f"stop shim {name}", ref.stop)
        for role in list(self.state["shims"]):
            step(f"stop shim-{role}", self.stop_shim, role)
        if self.state["recorder"]:
            step("stop recorder", self.stop_recorder)
        if self.ovs is not None:
            step("stop ovs", self.ovs.stop)
            self._save()

    def _down_links(self, step: _Step) -> None:
        for v in list(self.state["veths"]):
            if step(f"delete veth {v['a']}", netns.delete_veth, netns.Veth.from_json(v)):
                self.state["veths"].remove(v)
        for ns in list(self.state["created_namespaces"]):
            if step(f"delete netns {ns}", netns.delete_ns, ns):
                self.state["created_namespaces"].remove(ns)

    def _down_redis(self, step: _Step) -> None:
        if self._redis is not None:
            if step("stop redis", self._redis.stop):
                self._redis = None
                self.state["redis"] = None
        elif self.state.get("redis"):
            if step("stop redis", ProcRef.from_json(self.state["redis"]["proc"]).stop):
                try:
                    os.unlink(self.state["redis"]["socket"])
                except FileNotFoundError:
                    pass
                self.state["redis"] = None

    def down(self) -> list[str]:
        """Remove exactly what up() recorded, tolerating parts already gone; returns a log.

        Order: processes (so nothing holds the namespaces), veths, namespaces, redis. Items
        that fail stay in lab.json, so calling down() again retries only those.
        """
        done: list[str] = []
        errors: list[str] = []

        def step(what: str, fn: Callable[..., object], *args: object) -> bool:
            try:
                fn(*args)
            except Exception as e:
                errors.append(f"{what}: {e}")
                return False
            done.append(what)
            return True

        self._down_processes(step)
        self._down_links(step)
        self._down_redis(step)
        self.state["phase"] = "down" if not errors else "down-with-errors"
        self.state["down_errors"] = errors
        if self.state_path.parent.exists():
            self._save()
        if errors:
            raise LabError("lab down incomplete: " + "; ".join(errors))
        return done
