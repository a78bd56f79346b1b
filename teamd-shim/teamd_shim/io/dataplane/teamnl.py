"""A pyroute2 client for the Linux `team` generic-netlink family (what libteam's teamnl speaks).

pyroute2 0.9 ships no team genl support (hld §13.4), so the message layout
of include/uapi/linux/if_team.h is declared here. DATA is raw bytes packed by TYPE, because its
type depends on a sibling attribute. Per-port bool `enabled`: a missing DATA means false, a
zero-length DATA means true (team_nl_cmd_options_set).

The sync `GenericNetlinkSocket` drives its own private event loop, so a `TeamNL` must be created
and used in a thread without a running asyncio loop (the dataplane's worker/watcher threads).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST, genlmsg, nla
from pyroute2.netlink.generic import GenericNetlinkSocket

TEAM_GENL_NAME = "team"
TEAM_GENL_VERSION = 1
TEAM_GENL_CHANGE_EVENT_MC_GRP_NAME = "change_event"

TEAM_CMD_NOOP = 0
TEAM_CMD_OPTIONS_SET = 1
TEAM_CMD_OPTIONS_GET = 2
TEAM_CMD_PORT_LIST_GET = 3

# option types are the kernel's NLA_* numbers
NLA_U32 = 3
NLA_STRING = 5
NLA_FLAG = 6
NLA_BINARY = 11
NLA_S32 = 14


class teammsg(genlmsg):
    prefix = "TEAM_ATTR_"
    nla_map = (
        ("TEAM_ATTR_UNSPEC", "none"),
        ("TEAM_ATTR_TEAM_IFINDEX", "uint32"),
        ("TEAM_ATTR_LIST_OPTION", "list_option"),
        ("TEAM_ATTR_LIST_PORT", "list_port"),
    )

    class list_option(nla):
        nla_map = (("TEAM_ATTR_ITEM_OPTION_UNSPEC", "none"), ("TEAM_ATTR_ITEM_OPTION", "item"))

        class item(nla):
            prefix = "TEAM_ATTR_OPTION_"
            nla_map = (
                ("TEAM_ATTR_OPTION_UNSPEC", "none"),
                ("TEAM_ATTR_OPTION_NAME", "asciiz"),
                ("TEAM_ATTR_OPTION_CHANGED", "flag"),
                ("TEAM_ATTR_OPTION_TYPE", "uint8"),
                ("TEAM_ATTR_OPTION_DATA", "cdata"),
                ("TEAM_ATTR_OPTION_REMOVED", "flag"),
                ("TEAM_ATTR_OPTION_PORT_IFINDEX", "uint32"),
                ("TEAM_ATTR_OPTION_ARRAY_INDEX", "uint32"),
            )

    class list_port(nla):
        nla_map = (("TEAM_ATTR_ITEM_PORT_UNSPEC", "none"), ("TEAM_ATTR_ITEM_PORT", "item"))

        class item(nla):
            prefix = "TEAM_ATTR_PORT_"
            nla_map = (
                ("TEAM_ATTR_PORT_UNSPEC", "none"),
                ("TEAM_ATTR_PORT_IFINDEX", "uint32"),
                ("TEAM_ATTR_PORT_CHANGED", "flag"),
                ("TEAM_ATTR_PORT_LINKUP", "flag"),
                ("TEAM_ATTR_PORT_SPEED", "uint32"),
                ("TEAM_ATTR_PORT_DUPLEX", "uint8"),
                ("TEAM_ATTR_PORT_REMOVED", "flag"),
            )


@dataclass(frozen=True)
class TeamOption:
    """One option instance; `port` is 0 for device-wide options."""

    team: int
    name: str
    type: int
    value: Any
    port: int = 0
    array_index: int | None = None
    changed: bool = False
    removed: bool = False


@dataclass(frozen=True)
class TeamPort:
    team: int
    ifindex: int
    linkup: bool
    changed: bool = False
    removed: bool = False


def encode_value(typ: int, value: Any) -> bytes | None:
    """Pack an option value for DATA; None means "leave DATA out" (a false bool)."""
    if typ == NLA_FLAG:
        return b"" if value else None
    if typ == NLA_U32:
        return struct.pack("=I", int(value))
    if typ == NLA_S32:
        return struct.pack("=i", int(value))
    if typ == NLA_STRING:
        return str(value).encode() + b"\0"
    if typ == NLA_BINARY:
        return bytes(value)
    raise ValueError(f"unknown team option type {typ}")


def decode_value(typ: int | None, data: bytes | None) -> Any:
    if typ == NLA_FLAG:
        return data is not None
    if data is None:
        return None
    if typ == NLA_U32 and len(data) >= 4:
        return struct.unpack("=I", data[:4])[0]
    if typ == NLA_S32 and len(data) >= 4:
        return struct.unpack("=i", data[:4])[0]
    if typ == NLA_STRING:
        return data.split(b"\0", 1)[0].decode(errors="replace")
    return bytes(data)


def parse_options(msg: Any) -> list[TeamOption]:
    """Options of an OPTIONS_GET reply or a change_event message."""
    team = msg.get_attr("TEAM_ATTR_TEAM_IFINDEX") or 0
    lst = msg.get_attr("TEAM_ATTR_LIST_OPTION")
    out = []
    for item in lst.get_attrs("TEAM_ATTR_ITEM_OPTION") if lst is not None else ():
        typ = item.get_attr("TEAM_ATTR_OPTION_TYPE")
        data = item.get_attr("TEAM_ATTR_OPTION_DATA")
        out.append(
            TeamOption(
                team=team,
                name=item.get_attr("TEAM_ATTR_OPTION_NAME") or "",
                type=typ or 0,
                value=decode_value(typ, data),
                port=item.get_attr("TEAM_ATTR_OPTION_PORT_IFINDEX") or 0,
                array_index=item.get_attr("TEAM_ATTR_OPTION_ARRAY_INDEX"),
                changed=item.get_attr("TEAM_ATTR_OPTION_CHANGED") is not None,
                removed=item.get_attr("TEAM_ATTR_OPTION_REMOVED") is not None,
            )
        )
    return out


def parse_ports(msg: Any) -> list[TeamPort]:
    team = msg.get_attr("TEAM_ATTR_TEAM_IFINDEX") or 0
    lst = msg.get_attr("TEAM_ATTR_LIST_PORT")
    out = []
    for item in lst.get_attrs("TEAM_ATTR_ITEM_PORT") if lst is not None else ():
        out.append(
            TeamPort(
                team=team,
                ifindex=item.get_attr("TEAM_ATTR_PORT_IFINDEX") or 0,
                linkup=item.get_attr("TEAM_ATTR_PORT_LINKUP") is not None,
                changed=item.get_attr("TEAM_ATTR_PORT_CHANGED") is not None,
                removed=item.get_attr("TEAM_ATTR_PORT_REMOVED") is not None,
            )
        )
    return out


def options_set_msg(
    team: int, name: str, typ: int, value: Any, *, port: int = 0, array_index: int | None = None
) -> teammsg:
    item: list[Any] = [("TEAM_ATTR_OPTION_NAME", name), ("TEAM_ATTR_OPTION_TYPE", typ)]
    data = encode_value(typ, value)
    if data is not None:
        item.append(("TEAM_ATTR_OPTION_DATA", data))
    if port:
        item.append(("TEAM_ATTR_OPTION_PORT_IFINDEX", port))
    if array_index is not None:
        item.append(("TEAM_ATTR_OPTION_ARRAY_INDEX", array_index))
    msg = teammsg()
    msg["cmd"] = TEAM_CMD_OPTIONS_SET
    msg["version"] = TEAM_GENL_VERSION
    msg["attrs"] = [
        ("TEAM_ATTR_TEAM_IFINDEX", team),
        ("TEAM_ATTR_LIST_OPTION", {"attrs": [("TEAM_ATTR_ITEM_OPTION", {"attrs": item})]}),
    ]
    return msg


class TeamNL:
    """Sync team genl socket: options get/set, port list, and the change_event stream.

    Raises pyroute2's NetlinkError (ENOENT/ENOTSUP) at construction when the kernel has no team
    driver, which is what the backend probe relies on.
    """

    def __init__(self, *, events: bool = False) -> None:
        self.sock = GenericNetlinkSocket()
        try:
            self.sock.bind(TEAM_GENL_NAME, teammsg)
            if events:
                self.sock.add_membership(TEAM_GENL_CHANGE_EVENT_MC_GRP_NAME)
        except Exception:
            self.sock.close()
            raise

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def _request(self, cmd: int, team: int) -> list[Any]:
        msg = teammsg()
        msg["cmd"] = cmd
        msg["version"] = TEAM_GENL_VERSION
        msg["attrs"] = [("TEAM_ATTR_TEAM_IFINDEX", team)]
        return list(
            self.sock.nlm_request(msg, msg_type=self.sock.prid, msg_flags=NLM_F_REQUEST | NLM_F_ACK)
        )

    def options(self, team: int) -> list[TeamOption]:
        return [o for m in self._request(TEAM_CMD_OPTIONS_GET, team) for o in parse_options(m)]

    def ports(self, team: int) -> list[TeamPort]:
        return [p for m in self._request(TEAM_CMD_PORT_LIST_GET, team) for p in parse_ports(m)]

    def set_option(
        self,
        team: int,
        name: str,
        typ: int,
        value: Any,
        *,
        port: int = 0,
        array_index: int | None = None,
    ) -> None:
        msg = options_set_msg(team, name, typ, value, port=port, array_index=array_index)
        list(
            self.sock.nlm_request(msg, msg_type=self.sock.prid, msg_flags=NLM_F_REQUEST | NLM_F_ACK)
        )

    def set_port_enabled(self, team: int, port: int, enabled: bool) -> None:
        self.set_option(team, "enabled", NLA_FLAG, enabled, port=port)

    def set_mode(self, team: int, mode: str) -> None:
        self.set_option(team, "mode", NLA_STRING, mode)

    def port_enabled(self, team: int) -> dict[int, bool]:
        return {
            o.port: bool(o.value)
            for o in self.options(team)
            if o.name == "enabled" and o.port and not o.removed
        }

    def events(self) -> list[tuple[list[TeamOption], list[TeamPort]]]:
        """Block for the next batch of change_event messages: (options, ports) per message."""
        out = []
        for m in self.sock.get():
            if m.get("header", {}).get("type") != self.sock.prid:
                continue
            out.append((parse_options(m), parse_ports(m)))
        return out

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> TeamNL:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
