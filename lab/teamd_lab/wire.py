"""The compose lab's one-shot wiring step (`teamd-lab wire`), run in its own container.

The wiring container shares the switch holder's network namespace (`network_mode:
service:switch`) and the peer holder's pid namespace (`pid: service:peer`), so pid 1 is the
peer holder and "the netns of pid 1" is the partner side. It creates one veth pair per member
(`EthernetN` here, `pN` moved there, stable MACs from topology.py), writes CONFIG_DB as `config
portchannel add --fast-rate true` would, and gives the Open vSwitch partner its bridge and one
LACP-fast bond per LAG through the partner's database socket (a shared volume). Idempotent: a
second run finds everything in place and changes nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import redis
from pyroute2 import IPRoute

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
from teamd_shim.db.redis_decoded import fields as redis_fields

BRIDGE = "br0"


class WireError(RuntimeError):
    pass


def veths(members: list[Member], peer_pid: int, say: Callable[[str], None]) -> None:
    with IPRoute() as ipr:
        for m in members:
            if ipr.link_lookup(ifname=m.dut_port):
                continue
            ipr.link("add", ifname=m.dut_port, kind="veth", peer=m.partner_port)
            a = ipr.link_lookup(ifname=m.dut_port)[0]
            b = ipr.link_lookup(ifname=m.partner_port)[0]
            ipr.link("set", index=a, address=dut_port_mac(m.k))
            ipr.link("set", index=b, address=partner_port_mac(m.k))
            ipr.link("set", index=b, net_ns_pid=peer_pid)
            ipr.link("set", index=a, state="up")
    # a link moved to another namespace arrives down: bring the peer ends up there (setns needs
    # CAP_SYS_ADMIN, which only this one-shot container has)
    p = subprocess.run(
        [
            "nsenter",
            f"--net=/proc/{peer_pid}/ns/net",
            "--",
            "sh",
            "-c",
            " && ".join(f"ip link set {m.partner_port} up" for m in members),
        ],
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        raise WireError(f"bringing the partner ports up failed: {p.stderr.strip()}")
    say(f"wire: {len(members)} veth pairs (Ethernet* here, p* in the partner's namespace)")


def config_db(url: str, members: list[Member], say: Callable[[str], None]) -> None:
    r = redis.Redis.from_url(url, db=CONFIG_DB, decode_responses=True)
    for key, fields in config_db_hashes(members, system_mac=DUT_SYSTEM_MAC).items():
        r.hset(key, mapping=redis_fields(fields))
    r.set(CONFIG_DB_INITIALIZED, "1")
    say(f"wire: CONFIG_DB: {len({m.lag for m in members})} PortChannels, {len(members)} members")


def vsctl(db: str, *args: str) -> str:
    p = subprocess.run(
        ["ovs-vsctl", f"--db={db}", "--timeout=15", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if p.returncode != 0:
        raise WireError(f"ovs-vsctl {' '.join(args[:3])}...: {p.stderr.strip()}")
    return p.stdout


def partner(db: str, members: list[Member], say: Callable[[str], None]) -> None:
    vsctl(
        db,
        "--may-exist",
        "add-br",
        BRIDGE,
        "--",
        "set",
        "bridge",
        BRIDGE,
        "datapath_type=netdev",
        f"other-config:hwaddr={PARTNER_SYSTEM_MAC}",
    )
    have = set(vsctl(db, "list-ports", BRIDGE).split())
    by_bond: dict[str, list[Member]] = {}
    for m in members:
        by_bond.setdefault(m.bond, []).append(m)
    for bond, ms in by_bond.items():
        if bond in have:
            continue
        args: list[str] = []
        for i, m in enumerate(ms):
            args += ["--", f"--id=@i{i}", "create", "interface", f"name={m.partner_port}"]
        args += [
            "--",
            "--id=@p",
            "create",
            "port",
            f"name={bond}",
            f"interfaces=[{','.join(f'@i{i}' for i in range(len(ms)))}]",
            "lacp=active",
            "bond_mode=balance-tcp",
            "other_config:lacp-time=fast",
            "--",
            "add",
            "bridge",
            BRIDGE,
            "ports",
            "@p",
        ]
        vsctl(db, *args)
    say(f"wire: Open vSwitch partner: {BRIDGE} with {len(by_bond)} LACP-fast bonds")


def wire(
    lags: int, members: int, redis_url: str, peer_pid: int, ovs_db: str, say: Callable[[str], None]
) -> None:
    ms = plan(lags, members)
    veths(ms, peer_pid, say)
    partner(ovs_db, ms, say)
    config_db(redis_url, ms, say)  # last: when the shim sees the LAGs, everything exists
