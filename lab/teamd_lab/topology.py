"""Names, MAC addresses and CONFIG_DB content of the lab, as pure functions.

Kept apart from the code that creates things so that the naming scheme (SONiC-style
`PortChannel0001` / `Ethernet0`, partner ports `p0`...) is defined once and every MAC is
stable across runs: the partner must see the same identity every time a lab is rebuilt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Locally administered (bit 1 of the first octet set), unicast.
DUT_SYSTEM_MAC = "02:00:00:00:d0:01"  # DEVICE_METADATA|localhost mac: the DUT's LACP system id
PARTNER_SYSTEM_MAC = "02:00:00:00:00:bb"  # OVS bridge other-config:hwaddr (partner system id)

CONFIG_DB = 4
CONFIG_DB_SEPARATOR = "|"
CONFIG_DB_INITIALIZED = "CONFIG_DB_INITIALIZED"


def lag_name(i: int) -> str:
    """1-based LAG index -> SONiC name."""
    return f"PortChannel{i:04d}"


def lag_index(name: str) -> int:
    if not name.startswith("PortChannel") or not name[11:].isdigit():
        raise ValueError(f"not a PortChannel name: {name!r}")
    return int(name[11:])


def bond_name(i: int) -> str:
    return f"bond{i}"


def dut_port(k: int) -> str:
    """Global member index k (0-based) -> SONiC front-panel name, 4 lanes per port."""
    return f"Ethernet{4 * k}"


def partner_port(k: int) -> str:
    return f"p{k}"


def _mac(tag: int, k: int) -> str:
    return f"02:00:00:{tag:02x}:{(k >> 8) & 0xFF:02x}:{k & 0xFF:02x}"


def dut_port_mac(k: int) -> str:
    return _mac(0xD1, k)


def partner_port_mac(k: int) -> str:
    return _mac(0xE1, k)


@dataclass(frozen=True)
class Member:
    """One LAG member: the DUT port and the partner port at the two ends of one veth pair."""

    lag: str
    k: int
    dut_port: str
    partner_port: str
    bond: str

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Member:
        return cls(d["lag"], int(d["k"]), d["dut_port"], d["partner_port"], d["bond"])


def member(lag_i: int, k: int) -> Member:
    return Member(lag_name(lag_i), k, dut_port(k), partner_port(k), bond_name(lag_i))


def plan(lags: int, members: int) -> list[Member]:
    """LAG i (1-based) gets members k = (i-1)*members ... i*members-1."""
    if lags < 1 or members < 1:
        raise ValueError("need at least one LAG with one member")
    return [member(i, (i - 1) * members + j) for i in range(1, lags + 1) for j in range(members)]


def portchannel_fields() -> dict[str, str]:
    """What `config portchannel add --fast-rate true` writes."""
    return {
        "admin_status": "up",
        "mtu": "9100",
        "min_links": "1",
        "fast_rate": "true",
        "lacp_key": "auto",
    }


def config_db_hashes(
    members: list[Member], system_mac: str = DUT_SYSTEM_MAC, lags: list[str] | None = None
) -> dict[str, dict[str, str]]:
    """CONFIG_DB hash keys -> fields for the given members (and LAGs without members)."""
    sep = CONFIG_DB_SEPARATOR
    out: dict[str, dict[str, str]] = {f"DEVICE_METADATA{sep}localhost": {"mac": system_mac}}
    for lag in [*(lags or []), *(m.lag for m in members)]:
        out[f"PORTCHANNEL{sep}{lag}"] = portchannel_fields()
    for m in members:
        out[f"PORTCHANNEL_MEMBER{sep}{m.lag}{sep}{m.dut_port}"] = {"NULL": "NULL"}
        # a SONiC box has every front-panel port in PORT; teammgrd gives a member its
        # admin_status from there (absent: down)
        out[f"PORT{sep}{m.dut_port}"] = {"admin_status": "up", "mtu": "9100"}
    return out
