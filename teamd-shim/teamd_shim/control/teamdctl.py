"""teamdctl's command line, spoken to a teamd-shim control socket; pure (the I/O is cli.py's).

SONiC runs libteam's `teamdctl` against teamd: `config portchannel retry-count get|set`,
`teamd_increase_retry_count.py` and `lag_keepalive.py` call `teamdctl LAG state item get|set
...` and `teamdctl LAG state dump`, and the host's `/usr/bin/teamdctl` is `docker exec -i teamd
teamdctl "$@"`. With teamd replaced, the product's `teamdctl` has to read the same words and
print the same bytes (hld §15.2). What is copied from libteam `utils/teamdctl.c` (upstream,
jpirko/libteam), and why:

- **The command table and its matching**: each word may be any prefix of a command name
  (`teamdctl PortChannel1 st d` is `state dump`), the first match in the table's order wins,
  and a command stops taking words once it has what its parameters need; the error texts
  (`Unknown command "x".`, `None or incomplete command`, `Command line parameter "VALUE"
  expected.`), followed by the help on stdout, exit 1. Scripts grep these.
- **The options**: `-h`, `-v` (verbosity of `state view`), `-o` (one line), `-U` (the unix
  socket, which is all we have), `-D` / `-Z` refused as a teamdctl built without D-Bus or
  ZeroMQ refuses them; GNU getopt's order (options anywhere before `--`). Added: `--ctl-dir`,
  the directory of the control sockets (no short form: `-D` is teamdctl's D-Bus switch).
- **The output**: JSON as jansson's `json_dumps(JSON_INDENT(4) | JSON_ENSURE_ASCII |
  JSON_SORT_KEYS)` prints it (`-o`: indent 0, one line), `state item get` the bare value,
  `state` / `state view` the same lines and indents as teamdctl's view of a lacp runner, every
  failure exit 1.

`port add|remove` and `port config update` are teammgrd's: teamd-shim takes the members from
CONFIG_DB itself, so they are refused by name, exit 1, before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PROG = "teamdctl"


@dataclass(frozen=True)
class Command:
    """One entry of libteam's command table: its words, its parameters, and whether it runs.
    Entries that do not run (`config`, `state item`, ...) only lead to their children."""

    words: tuple[str, ...]
    params: tuple[str, ...] = ()
    runs: bool = True
    supported: bool = True  # False: teammgrd's job, refused by teamd-shim

    @property
    def name(self) -> str:
        return " ".join(self.words)


# libteam's table, in its order (the order decides which command a prefix picks)
COMMANDS: tuple[Command, ...] = (
    Command(("config",), runs=False),
    Command(("config", "dump")),
    Command(("config", "dump", "noports")),
    Command(("config", "dump", "actual")),
    Command(("state",)),
    Command(("state", "dump")),
    Command(("state", "view")),
    Command(("state", "item"), runs=False),
    Command(("state", "item", "get"), ("ITEMPATH",)),
    Command(("state", "item", "set"), ("ITEMPATH", "VALUE")),
    Command(("port",), runs=False),
    Command(("port", "add"), ("PORTDEV",), supported=False),
    Command(("port", "remove"), ("PORTDEV",), supported=False),
    Command(("port", "present"), ("PORTDEV",)),
    Command(("port", "config"), runs=False),
    Command(("port", "config", "update"), ("PORTDEV", "PORTCONFIG"), supported=False),
    Command(("port", "config", "dump"), ("PORTDEV",)),
)


@dataclass(frozen=True)
class Outcome:
    """What to print and the exit status."""

    code: int
    stdout: str = ""
    stderr: str = ""


@dataclass(frozen=True)
class Invocation:
    lag: str
    command: Command
    args: tuple[str, ...]
    verbosity: int = 1
    oneline: bool = False
    ctl_dir: str | None = None


@dataclass
class _Options:
    verbosity: int = 1
    oneline: bool = False
    ctl_dir: str | None = None
    positional: list[str] = field(default_factory=list)


def help_text() -> str:
    lines = [
        f"{PROG} [options] teamdevname command [command args]",
        "    -h --help                Show this help",
        "    -v --verbose             Increase output verbosity",
        "    -o --oneline             Force output to one line if possible",
        "    -D --force-dbus          Force to use D-Bus interface (not in teamd-shim)",
        "    -Z --force-zmq=ADDRESS   Force to use ZeroMQ interface (not in teamd-shim)",
        "    -U --force-usock         Force to use UNIX domain socket interface",
        "       --ctl-dir=DIR         teamd-shim's control directory (default: "
        "$TEAMD_SHIM_CTL_DIR, else /run/teamd-shim)",
        "Commands:",
    ]
    for c in COMMANDS:
        if c.runs:
            tail = "" if c.supported else "    (refused: members come from CONFIG_DB)"
            lines.append(f"    {' '.join((*c.words, *c.params))}{tail}")
    return "\n".join(lines) + "\n"


def _usage_error(message: str) -> Outcome:
    return Outcome(1, help_text(), message + "\n")


_LONG = ("help", "verbose", "oneline", "force-dbus", "force-zmq", "force-usock", "ctl-dir")
_SHORT = {"h": "help", "v": "verbose", "o": "oneline", "D": "force-dbus", "Z": "force-zmq"}
_SHORT["U"] = "force-usock"
_WITH_VALUE = ("force-zmq", "ctl-dir")


def _long_name(arg: str) -> str | None:
    """GNU getopt_long: an exact name, or an unambiguous prefix of one."""
    if arg in _LONG:
        return arg
    hits = [n for n in _LONG if n.startswith(arg)]
    return hits[0] if len(hits) == 1 else None


def _option(name: str, value: str | None, opts: _Options) -> Outcome | None:
    """Apply one option; an Outcome ends the run (help, or a refusal)."""
    if name == "help":
        return Outcome(0, help_text())
    if name == "verbose":
        opts.verbosity += 1
    elif name == "oneline":
        opts.oneline = True
    elif name == "force-dbus":
        return Outcome(1, stderr="D-Bus support is not compiled-in\n")
    elif name == "force-zmq":
        return Outcome(1, stderr="ZeroMQ support is not compiled-in\n")
    elif name == "ctl-dir":
        opts.ctl_dir = value
    return None  # force-usock: the unix socket is the only interface anyway


def _flags(arg: str) -> list[tuple[str, str | None]] | Outcome:
    """One option word -> (option, inline value) pairs: `--name[=v]` or `-abc` / `-Zvalue`."""
    if arg.startswith("--"):
        key, eq, val = arg[2:].partition("=")
        name = _long_name(key)
        if name is None:
            return _usage_error(f"{PROG}: unrecognized option '{arg}'\nunknown option.")
        return [(name, val if eq else None)]
    pairs: list[tuple[str, str | None]] = []
    for j, ch in enumerate(arg[1:], 1):
        if ch not in _SHORT:
            return _usage_error(f"{PROG}: invalid option -- '{ch}'\nunknown option.")
        takes = _SHORT[ch] in _WITH_VALUE
        pairs.append((_SHORT[ch], (arg[j + 1 :] or None) if takes else None))
        if takes:
            break
    return pairs


def _options(argv: list[str]) -> _Options | Outcome:
    """GNU getopt_long's way: options anywhere until `--`, the rest positional."""
    opts = _Options()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            opts.positional += argv[i:]
            break
        if not arg.startswith("-") or arg == "-":
            opts.positional.append(arg)
            continue
        pairs = _flags(arg)
        if isinstance(pairs, Outcome):
            return pairs
        for name, val in pairs:
            if name in _WITH_VALUE and val is None:
                if i >= len(argv):
                    return _usage_error(
                        f"{PROG}: option '--{name}' requires an argument\nunknown option."
                    )
                val, i = argv[i], i + 1
            out = _option(name, val, opts)
            if out is not None:
                return out
    return opts


def _find(words: list[str]) -> tuple[Command, list[str]] | Outcome:
    """libteam's find_command: walk the table a word at a time, any prefix matching."""
    parent: tuple[str, ...] = ()
    rest = list(words)
    while True:
        if not rest:
            return _usage_error("None or incomplete command")
        word = rest.pop(0)
        cmd = next(
            (c for c in COMMANDS if c.words[:-1] == parent and c.words[-1].startswith(word)),
            None,
        )
        if cmd is None:
            return _usage_error(f'Unknown command "{word}".')
        if cmd.runs and len(cmd.params) >= len(rest):
            if len(rest) < len(cmd.params):
                return _usage_error(f'Command line parameter "{cmd.params[len(rest)]}" expected.')
            return cmd, rest
        parent = cmd.words


def parse(argv: list[str]) -> Invocation | Outcome:
    """teamdctl's argv (without the program name) -> what to ask, or what to print now."""
    opts = _options(argv)
    if isinstance(opts, Outcome):
        return opts
    if not opts.positional:
        return _usage_error("No team device specified.")
    lag, *words = opts.positional
    found = _find(words)
    if isinstance(found, Outcome):
        return found
    cmd, args = found
    return Invocation(lag, cmd, tuple(args), opts.verbosity, opts.oneline, opts.ctl_dir)


def unsupported(inv: Invocation) -> Outcome:
    return Outcome(
        1,
        stderr=f"{PROG}: `{inv.command.name}` is not supported by teamd-shim: it takes the "
        "members of every LAG from CONFIG_DB PORTCHANNEL_MEMBER itself (teammgrd's job); "
        f"nothing was sent to {inv.lag}. Change the member in CONFIG_DB (`config portchannel "
        "member add|del`)\n",
    )


def request(inv: Invocation) -> dict[str, Any] | None:
    """The control-socket request of a supported command (None: refused, see unsupported)."""
    if not inv.command.supported:
        return None
    words, lag = inv.command.words, inv.lag
    if words[0] == "config" or words == ("port", "config", "dump"):
        return {"cmd": "config_dump", "lag": lag}
    if words == ("state", "item", "get"):
        return {"cmd": "state_item_get", "lag": lag, "path": inv.args[0]}
    if words == ("state", "item", "set"):
        return {"cmd": "state_item_set", "lag": lag, "path": inv.args[0], "value": inv.args[1]}
    return {"cmd": "state_dump", "lag": lag}  # state, state dump, state view, port present


def dumps(obj: object, oneline: bool = False) -> str:
    """jansson's json_dumps(JSON_INDENT(4 or 0) | JSON_ENSURE_ASCII | JSON_SORT_KEYS): with
    indent 4 items end in "," and a newline; with 0 they are ", " on one line, keys ": "."""
    return json.dumps(obj, indent=None if oneline else 4, sort_keys=True, ensure_ascii=True)


def failed(why: str) -> Outcome:
    """teamdctl's shape of a failed call, with our reason in place of strerror()."""
    return Outcome(1, stderr=f"command call failed ({why})\n")


def render(inv: Invocation, result: Any, *, echo_set: bool = False) -> Outcome:
    """The reply of `request(inv)` printed as teamdctl prints it. `echo_set`: print the value
    a `state item set` left, as `teamd-shim ctl` always has (teamdctl prints nothing)."""
    words = inv.command.words
    if echo_set and words == ("state", "item", "set"):
        words = ("state", "item", "get")
    try:
        return _RENDER[words](inv, result)
    except (KeyError, TypeError, ValueError) as e:
        return Outcome(1, stderr=f"Failed to parse JSON dump ({e!r} missing or malformed).\n")


def _json(inv: Invocation, result: Any) -> Outcome:
    return Outcome(0, dumps(result, inv.oneline) + "\n")


def _noports(inv: Invocation, result: Any) -> Outcome:
    return _json(inv, {k: v for k, v in result.items() if k != "ports"})


def _item_get(inv: Invocation, result: Any) -> Outcome:
    return Outcome(0, (json.dumps(result) if isinstance(result, bool) else str(result)) + "\n")


def _item_set(inv: Invocation, result: Any) -> Outcome:
    return Outcome(0)  # teamdctl prints nothing on success


def _present(inv: Invocation, result: Any) -> Outcome:
    return Outcome(0) if inv.args[0] in result.get("ports", {}) else failed("No such device")


def _port_config(inv: Invocation, result: Any) -> Outcome:
    port = result["ports"].get(inv.args[0])
    return failed("No such device") if port is None else _json(inv, port)


def _view(inv: Invocation, result: Any) -> Outcome:
    return Outcome(0, state_view(result, inv.verbosity))


_RENDER: dict[tuple[str, ...], Callable[[Invocation, Any], Outcome]] = {
    ("config", "dump"): _json,
    ("config", "dump", "noports"): _noports,
    ("config", "dump", "actual"): _json,  # no runtime port config changes: the same config
    ("state",): _view,
    ("state", "dump"): _json,
    ("state", "view"): _view,
    ("state", "item", "get"): _item_get,
    ("state", "item", "set"): _item_set,
    ("port", "present"): _present,
    ("port", "config", "dump"): _port_config,
}


class _View:
    """teamdctl's pr_out / pr_out2 with its two-space indent steps."""

    def __init__(self, verbosity: int) -> None:
        self.verbosity = verbosity
        self.depth = 0
        self.lines: list[str] = []

    def out(self, text: str, level: int = 1) -> None:
        if level <= self.verbosity:
            self.lines.append("  " * self.depth + text)

    def indent(self, by: int) -> None:
        self.depth = max(0, self.depth + by)


def _yn(v: object) -> str:
    return "yes" if v else "no"


def _ud(v: object) -> str:
    return "up" if v else "down"


def state_view(dump: dict[str, Any], verbosity: int = 1) -> str:
    """`teamdctl LAG state [view]` of a lacp runner, from the state dump."""
    v = _View(verbosity)
    s = dump["setup"]
    v.out("setup:")
    v.indent(1)
    v.out(f"runner: {s['runner_name']}")
    v.out(f"kernel team mode: {s['kernel_team_mode_name']}", 2)
    v.out(f"D-BUS enabled: {_yn(s['dbus_enabled'])}", 2)
    v.out(f"ZeroMQ enabled: {_yn(s['zmq_enabled'])}", 2)
    v.out(f"debug level: {s['debug_level']}", 2)
    v.out(f"daemonized: {_yn(s['daemonized'])}", 2)
    v.out(f"PID: {s['pid']}", 2)
    v.out(f"PID file: {s['pid_file']}", 2)
    v.indent(-1)
    if "ports" in dump:
        v.out("ports:")
        for name, port in dump["ports"].items():
            v.indent(1)
            _view_port(v, name, port)
            v.indent(-1)
    r = dump["runner"]
    v.out("runner:")
    v.indent(1)
    v.out(f"active: {_yn(r['active'])}")
    v.out(f"fast rate: {_yn(r['fast_rate'])}")
    v.out(f"system priority: {r['sys_prio']}", 2)
    return "\n".join(v.lines) + "\n"


def _view_port(v: _View, name: str, port: dict[str, Any]) -> None:
    info, link, lws = port["ifinfo"], port["link"], port["link_watches"]
    v.out(name)
    v.indent(1)
    v.out(f"ifindex: {info['ifindex']}", 2)
    v.out(f"addr: {info['dev_addr']}", 2)
    v.out(f"ethtool link: {link['speed']}mbit/{link['duplex']}duplex/{_ud(link['up'])}", 2)
    v.out("link watches:")
    v.indent(1)
    v.out(f"link summary: {_ud(lws['up'])}")
    for key, lw in lws.get("list", {}).items():
        v.out(f"instance[{key}]:")
        v.indent(1)
        v.out(f"name: {lw['name']}")
        v.out(f"link: {_ud(lw['up'])}")
        v.out(f"down count: {lw['down_count']}")
        if lw["name"] == "ethtool":
            v.out(f"link up delay: {lw['delay_up']}", 2)
            v.out(f"link down delay: {lw['delay_down']}", 2)
        v.indent(-1)
    v.indent(-1)
    pr = port["runner"]
    agg = pr["aggregator"]
    v.out("runner:")
    v.indent(1)
    v.out(f"aggregator ID: {agg['id']}{', Selected' if agg['selected'] else ''}")
    v.out(f"selected: {_yn(pr['selected'])}")
    v.out(f"state: {pr['state']}")
    v.out(f"key: {pr['key']}", 2)
    v.out(f"priority: {pr['prio']}", 2)
    for who in ("actor", "partner"):
        v.out(f"{who} LACPDU info:", 2)
        v.indent(1)
        du = pr[f"{who}_lacpdu_info"]
        v.out(f"system priority: {du['system_priority']}", 2)
        v.out(f"system: {du['system']}", 2)
        v.out(f"key: {du['key']}", 2)
        v.out(f"port_priority: {du['port_priority']}", 2)
        v.out(f"port: {du['port']}", 2)
        v.out(f"state: 0x{du['state']:x}", 2)
        v.indent(-1)
    v.indent(-1)
    v.indent(-1)
