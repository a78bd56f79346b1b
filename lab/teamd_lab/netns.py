"""Network namespaces and veth pairs for the lab, through pyroute2 (no `ip` parsing).

Every creating function returns a description of exactly what it made, and every deleting
function is idempotent, so a half-built or half-torn-down lab can always be cleaned up by
replaying the record without touching anything that was there before.
"""

from __future__ import annotations

import errno
import time
from dataclasses import asdict, dataclass

from pyroute2 import IPRoute, NetlinkError
from pyroute2 import netns as _netns


@dataclass(frozen=True)
class Veth:
    """One veth pair: `a` in namespace `ns_a`, its peer `b` in `ns_b`."""

    ns_a: str
    a: str
    ns_b: str
    b: str
    mac_a: str | None = None
    mac_b: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Veth:
        return cls(d["ns_a"], d["a"], d["ns_b"], d["b"], d.get("mac_a"), d.get("mac_b"))


def ns_exists(name: str) -> bool:
    return name in _netns.listnetns()


def create_ns(name: str) -> str:
    """Create namespace `name`; refuses if it already exists (it would not be ours to delete)."""
    if ns_exists(name):
        raise FileExistsError(f"network namespace {name!r} already exists")
    _netns.create(name)
    # The loopback is down in a fresh namespace; raise it so local tools behave normally.
    with IPRoute(netns=name, flags=0) as ipr:
        idx = ipr.link_lookup(ifname="lo")
        if idx:
            ipr.link("set", index=idx[0], state="up")
    return name


def attach_ns(name: str, pid: int) -> str:
    """Name the network namespace of process `pid` (a holder container's) `name`, as
    `ip netns attach` does; delete_ns only removes the name, the namespace lives on with its
    holder. Refuses if the name exists."""
    import subprocess

    if ns_exists(name):
        raise FileExistsError(f"network namespace {name!r} already exists")
    p = subprocess.run(["ip", "netns", "attach", name, str(pid)], capture_output=True, text=True)
    if p.returncode != 0:
        raise OSError(f"ip netns attach {name} {pid}: {p.stderr.strip()}")
    with IPRoute(netns=name, flags=0) as ipr:
        idx = ipr.link_lookup(ifname="lo")
        if idx:
            ipr.link("set", index=idx[0], state="up")
    return name


def delete_ns(name: str) -> bool:
    """Delete namespace `name` if present; returns whether something was removed."""
    if not ns_exists(name):
        return False
    try:
        _netns.remove(name)
    except FileNotFoundError:
        return False
    return True


def _ipr(ns: str) -> IPRoute:
    # flags=0: never create a namespace as a side effect of a query.
    return IPRoute(netns=ns, flags=0)


def link_exists(ns: str, ifname: str) -> bool:
    if not ns_exists(ns):
        return False
    with _ipr(ns) as ipr:
        return bool(ipr.link_lookup(ifname=ifname))


def create_veth(
    ns_a: str,
    a: str,
    ns_b: str,
    b: str,
    *,
    mac_a: str | None = None,
    mac_b: str | None = None,
    up: bool = True,
) -> Veth:
    """Create veth `a` (in ns_a) peered to `b` (in ns_b), optionally with fixed MACs."""
    peer: dict = {"ifname": b, "net_ns_fd": ns_b}
    if mac_b:
        peer["address"] = mac_b
    kwargs: dict = {"ifname": a, "kind": "veth", "peer": peer}
    if mac_a:
        kwargs["address"] = mac_a
    with _ipr(ns_a) as ipr:
        ipr.link("add", **kwargs)
    veth = Veth(ns_a, a, ns_b, b, mac_a, mac_b)
    if up:
        try:
            set_link(ns_a, a, True)
            set_link(ns_b, b, True)
        except Exception:
            delete_veth(veth)
            raise
    return veth


def create_veths(veths: list[Veth]) -> list[Veth]:
    """Many pairs between the same two namespaces, all up, with one netlink socket per
    namespace instead of three per pair (a 512 x 2 lab has 1024: issue 19). On a failure the
    pairs made so far are deleted before the error is raised."""
    if not veths:
        return []
    ns_a, ns_b = veths[0].ns_a, veths[0].ns_b
    if any((v.ns_a, v.ns_b) != (ns_a, ns_b) for v in veths):
        raise ValueError("create_veths: every pair must join the same two namespaces")
    made: list[Veth] = []
    try:
        with _ipr(ns_a) as ipr:
            for v in veths:
                peer: dict = {"ifname": v.b, "net_ns_fd": ns_b}
                if v.mac_b:
                    peer["address"] = v.mac_b
                kwargs: dict = {"ifname": v.a, "kind": "veth", "peer": peer}
                if v.mac_a:
                    kwargs["address"] = v.mac_a
                ipr.link("add", **kwargs)
                made.append(v)
            for v in veths:
                ipr.link("set", index=ipr.link_lookup(ifname=v.a)[0], state="up")
        with _ipr(ns_b) as ipr:
            for v in veths:
                ipr.link("set", index=ipr.link_lookup(ifname=v.b)[0], state="up")
    except Exception:
        for v in made:
            delete_veth(v)
        raise
    return made


def delete_veth(veth: Veth) -> bool:
    """Delete the pair (deleting either end removes both); missing ends are fine."""
    removed = False
    for ns, ifname in ((veth.ns_a, veth.a), (veth.ns_b, veth.b)):
        if not ns_exists(ns):
            continue
        with _ipr(ns) as ipr:
            idx = ipr.link_lookup(ifname=ifname)
            if not idx:
                continue
            try:
                ipr.link("del", index=idx[0])
                removed = True
            except NetlinkError as e:
                if e.code != errno.ENODEV:
                    raise
    return removed


def set_link(ns: str, ifname: str, up: bool) -> None:
    """Administratively set a link up or down."""
    with _ipr(ns) as ipr:
        idx = ipr.link_lookup(ifname=ifname)
        if not idx:
            raise FileNotFoundError(f"no link {ifname!r} in namespace {ns!r}")
        ipr.link("set", index=idx[0], state="up" if up else "down")


def link_state(ns: str, ifname: str) -> dict:
    """Admin flag, carrier and IFLA_OPERSTATE of a link ('UP', 'DOWN', 'LOWERLAYERDOWN', ...)."""
    with _ipr(ns) as ipr:
        msgs = ipr.link("get", ifname=ifname)
    m = msgs[0]
    return {
        "ifname": m.get("ifname"),
        "admin_up": m.get("state") == "up",
        "carrier": bool(m.get("carrier")),
        "operstate": m.get("IFLA_OPERSTATE"),
        "mac": m.get("address"),
    }


def oper_state(ns: str, ifname: str) -> str:
    return str(link_state(ns, ifname)["operstate"])


def list_links(ns: str) -> list[str]:
    """Names of all links in a namespace (lo included)."""
    with _ipr(ns) as ipr:
        return [m.get("ifname") for m in ipr.link("dump")]


def wait_oper(ns: str, ifname: str, state: str, timeout: float = 5.0) -> bool:
    """Poll until the link's operstate is `state`; veth carrier follows its peer asynchronously."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if oper_state(ns, ifname) == state:
            return True
        time.sleep(0.02)
    return False
