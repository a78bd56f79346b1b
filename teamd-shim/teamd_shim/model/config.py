"""CONFIG_DB -> desired LAG configuration, validated as teammgrd would.

Pure: takes the raw tables, returns what to run plus the reason every refused entry was refused,
so one bad entry never affects another LAG and the reason can be shown in STATE_DB.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from teamd_shim.lacp import LagSettings, parse_mac

LAG_NAME = re.compile(r"^PortChannel[0-9]{1,4}$")
MAC = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
DEFAULT_MTU = 9100


@dataclass(frozen=True)
class LagConfig:
    """One accepted PORTCHANNEL entry with its accepted members."""

    name: str
    admin_up: bool
    mtu: int
    min_links: int
    fast_rate: bool
    key: int
    system: str  # MAC string, the LACP actor system id
    members: tuple[str, ...] = ()
    # SONiC's LACP retry count (hld §13.7); 3 is plain LACP
    retry_count: int = 3
    # passed to orchagent in APPL_DB LAG_TABLE as teammgrd does (setLagTpid, setLagLearnMode);
    # "" when not configured
    tpid: str = ""
    learn_mode: str = ""
    fallback: bool = False  # SONiC's LACP fallback (teammgrd passes runner.fallback to teamd)

    def lacp_settings(self) -> LagSettings:
        """What of this entry the LACP core runs on; a change of it is a settings update."""
        return LagSettings(
            name=self.name,
            system=parse_mac(self.system),
            key=self.key,
            fast_rate=self.fast_rate,
            min_links=self.min_links,
            admin_up=self.admin_up,
            retry_count=self.retry_count,
            fallback=self.fallback,
            # no 802.1AX aggregate wait, as stock teamd (hld §12): it turned a partner's
            # identity change into a 2 s outage the partner saw; Lag.pop_intents nets out instead
        )


@dataclass(frozen=True)
class PortSettings:
    """What teammgrd gives a member from CONFIG_DB `PORT|<port>`: its admin state when it joins
    (and when it leaves), its own MTU when it leaves (in a LAG it takes the LAG's)."""

    admin_up: bool
    mtu: int


def port_settings(entry: dict[str, str] | None) -> PortSettings:
    """teammgrd's defaults (portmgr.h): admin down and MTU 9100 when PORT says nothing."""
    entry = entry or {}
    try:
        mtu = int(entry.get("mtu", DEFAULT_MTU))
    except ValueError:
        mtu = DEFAULT_MTU
    return PortSettings(admin_up=entry.get("admin_status", "down") == "up", mtu=mtu)


# sonic-portchannel.yang's values (teammgrd passes them on unchecked; orchagent rejects others)
TPIDS = ("0x8100", "0x9100", "0x9200", "0x88a8", "0x88A8")
LEARN_MODES = ("drop", "disable", "hardware", "cpu_trap", "cpu_log", "notification")


@dataclass
class DesiredConfig:
    """Accepted LAGs, plus refusals keyed by LAG name and by (LAG, port)."""

    lags: dict[str, LagConfig] = field(default_factory=dict)
    lag_errors: dict[str, str] = field(default_factory=dict)
    member_errors: dict[tuple[str, str], str] = field(default_factory=dict)
    # running LAGs whose changed entry was refused: they keep their running settings
    kept: dict[str, str] = field(default_factory=dict)


def lacp_key(lag: str, value: str | None) -> int:
    """SONiC's rule: `auto` -> int("1" + digits of the name); number -> itself; absent -> 0."""
    if value is None or value == "":
        return 0
    if value == "auto":
        return int("1" + "".join(c for c in lag if c.isdigit()))
    return int(value)


def port_number(port: str) -> int:
    """Actor port number stable across processes: as SONiC's libteam patch 0008
    (`lacp_portname_to_port_id`): atoi of what follows "Ethernet", plus 1. So EthernetN -> N+1,
    and `Ethernet-BPn` (backplane ports) -> 1, as stock teamd on SONiC sends it: the same
    number, so a move between the two is not a new port to the partner.

    Other names (labs) fall back to a CRC of the name, still stable, never 0.
    """
    if port.startswith("Ethernet"):
        return (_atoi(port[len("Ethernet") :]) + 1) & 0xFFFF
    return zlib.crc32(port.encode()) % 65534 + 1


def _atoi(text: str) -> int:
    """C's atoi: optional blanks and sign, then the leading digits; 0 if there are none."""
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def _bool(v: str, what: str) -> bool:
    """YANG's boolean: "true" or "false" exactly (teammgrd tests `== "true"`, so a "True" that
    we took for true would mean false to stock teamd: refused instead)."""
    if v == "true":
        return True
    if v == "false":
        return False
    raise ValueError(f"{what} must be 'true' or 'false', got {v!r}")


def _int(v: str, what: str, lo: int, hi: int) -> int:
    try:
        n = int(v)
    except ValueError:
        raise ValueError(f"{what} must be an integer {lo}..{hi}, got {v!r}") from None
    if not lo <= n <= hi:
        raise ValueError(f"{what} must be {lo}..{hi}, got {n}")
    return n


def parse_lag(name: str, entry: dict[str, str], system: str) -> LagConfig:
    """Validate one PORTCHANNEL entry; raises ValueError naming the offending field."""
    if not LAG_NAME.match(name):
        raise ValueError(f"bad LAG name {name!r}: must match PortChannel[0-9]{{1,4}}")
    admin = entry.get("admin_status", "down")
    if admin not in ("up", "down"):
        raise ValueError(f"admin_status must be 'up' or 'down', got {admin!r}")
    mtu = _int(entry.get("mtu", str(DEFAULT_MTU)), "mtu", 1, 9216)
    # teammgrd passes min_ports only when set; 0 is SONiC's "unset" (teamd's default, 1)
    min_links = _int(entry.get("min_links", "1"), "min_links", 0, 1024) or 1
    fast_rate = _bool(entry.get("fast_rate", "false"), "fast_rate")
    retry_count = _int(entry.get("retry_count", "3"), "retry_count", 3, 10)  # SONiC's CLI range
    # teammgrd's generateLacpKey: absent or empty -> 0 (not auto), as stock teamd runs it; a
    # different key here would make the partner re-select on a move between the two
    raw_key = entry.get("lacp_key") or None
    if raw_key is not None and raw_key != "auto":
        _int(raw_key, "lacp_key", 0, 65535)
    tpid = entry.get("tpid", "")
    if tpid and tpid not in TPIDS:
        raise ValueError(f"tpid must be one of {', '.join(TPIDS[:4])}, got {tpid!r}")
    learn_mode = entry.get("learn_mode", "")
    if learn_mode and learn_mode not in LEARN_MODES:
        raise ValueError(f"learn_mode must be one of {', '.join(LEARN_MODES)}, got {learn_mode!r}")
    fallback = _bool(entry.get("fallback", "false"), "fallback")
    sys_mac = entry.get("system_mac") or system
    if not sys_mac:
        raise ValueError("no LACP system id: set DEVICE_METADATA|localhost mac or system_mac")
    if not MAC.match(sys_mac):
        raise ValueError(f"system mac must be aa:bb:cc:dd:ee:ff, got {sys_mac!r}")
    return LagConfig(
        name=name,
        admin_up=admin == "up",
        mtu=mtu,
        min_links=min_links,
        fast_rate=fast_rate,
        key=lacp_key(name, raw_key),
        system=sys_mac.lower(),
        retry_count=retry_count,
        tpid=tpid.lower(),
        learn_mode=learn_mode,
        fallback=fallback,
    )


def desired_config(
    portchannel: dict[str, dict[str, str]],
    members: list[tuple[str, str]],
    device_mac: str | None,
    *,
    current_owner: dict[str, str] | None = None,
    running: dict[str, LagConfig] | None = None,
) -> DesiredConfig:
    """Build the whole desired state from the CONFIG_DB tables.

    `current_owner` maps port -> LAG it is already running in, so a port configured into a second
    LAG is refused there and the running LAG is left alone. `running` holds the settings in force:
    an invalid change to a running LAG is refused and those settings are kept, so a typo never
    takes a working LAG (or its members) down.
    """
    out = DesiredConfig()
    running = running or {}
    for name in sorted(portchannel):
        try:
            out.lags[name] = parse_lag(name, portchannel[name], device_mac or "")
        except ValueError as e:
            if name in running:
                out.lags[name] = running[name]
                out.kept[name] = str(e)
            else:
                out.lag_errors[name] = str(e)
    owner = _member_owners(out, members, current_owner or {})
    by_lag: dict[str, list[str]] = {}
    for port, lag in owner.items():
        by_lag.setdefault(lag, []).append(port)
    for name, cfg in list(out.lags.items()):
        ports = tuple(sorted(by_lag.get(name, []), key=port_number))
        out.lags[name] = LagConfig(**{**cfg.__dict__, "members": ports})
    return out


def _member_owners(
    out: DesiredConfig, members: list[tuple[str, str]], current_owner: dict[str, str]
) -> dict[str, str]:
    """port -> the one LAG it is a member of; every other claim goes to `out.member_errors`.
    A port keeps the LAG it already runs in, else the first by name."""
    owner: dict[str, str] = {}
    claims: dict[str, list[str]] = {}
    for lag, port in members:
        claims.setdefault(port, []).append(lag)
    for port, lags in claims.items():
        valid = [lag for lag in lags if lag in out.lags]
        for lag in lags:
            if lag not in out.lags:
                reason = out.lag_errors.get(lag, "no such PORTCHANNEL")
                out.member_errors[(lag, port)] = f"LAG {lag} is not running: {reason}"
        if not valid:
            continue
        cur = current_owner.get(port)
        keep = cur if cur is not None and cur in valid else sorted(valid)[0]
        owner[port] = keep
        for lag in valid:
            if lag != keep:
                out.member_errors[(lag, port)] = f"port {port} is already a member of {keep}"
    return owner
