"""`teamd-shim`: run the LACP daemon, or query a running one (`teamd-shim ctl LAG state dump`);
and `teamdctl`, the same queries with libteam teamdctl's command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable

from teamd_shim import __version__
from teamd_shim.control import teamdctl
from teamd_shim.control.alias import alias_path, instance_sockets, missing_alias
from teamd_shim.control.teamdctl import Outcome
from teamd_shim.control.transport import DEFAULT_CTL_DIR, DEFAULT_NAME, ControlError, request
from teamd_shim.db import sonic_db
from teamd_shim.db.ownership import awaited_as_standby, live_owner
from teamd_shim.model.contract import ContractError, InstanceInfo

ROLES = ("active", "standby", "auto")
# `--role auto` with Redis not answering: ask again after this (doubling up to the cap), and
# say so in the log at most this often
AUTO_RETRY_S, AUTO_RETRY_MAX_S, AUTO_LOG_EVERY_S = 0.1, 1.0, 10.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="teamd-shim",
        description="LACP speaker standing in for SONiC teamd; drives every PortChannel in "
        "CONFIG_DB. Run it in the network namespace that holds the member netdevs.",
    )
    p.add_argument(
        "--redis",
        metavar="URL",
        help="unix:///path/redis.sock or redis://host:port (default: $TEAMD_SHIM_REDIS, "
        f"else {sonic_db.DEFAULT_DB_CONFIG} if present, else {sonic_db.DEFAULT_URL})",
    )
    p.add_argument(
        "--role",
        choices=ROLES,
        default="active",
        help="auto: standby while a warm-restart run waits for this instance (with --hot: "
        "while a live owner holds the LAGs), else active; decided once Redis answers (what a "
        "container handover puts in the new container's command line, which outlives it)",
    )
    p.add_argument(
        "--hot",
        action="store_true",
        help="with --role standby: a hot standby that watches the owner and takes "
        "the LAGs over by itself when it dies or hangs (`warm-restart supervise` "
        "starts these); with no live owner it starts as the active (a cold start)",
    )
    p.add_argument("--name", default=DEFAULT_NAME, help="instance name (control socket name)")
    p.add_argument(
        "--ctl-dir",
        default=os.environ.get("TEAMD_SHIM_CTL_DIR"),
        help=f"directory of control sockets (default {DEFAULT_CTL_DIR}, in a container "
        "too: mount a host directory there that only root and the teamd containers share; "
        "never the Redis socket's directory)",
    )
    p.add_argument(
        "--ctl-group",
        metavar="GROUP",
        default=os.environ.get("TEAMD_SHIM_CTL_GROUP"),
        help="a group (name or gid) whose members may use the control socket too (default: "
        "root and the shim's own user only; the socket is 0600, with a group 0660)",
    )
    p.add_argument(
        "--warmboot-dir",
        metavar="DIR",
        default=os.environ.get("TEAMD_SHIM_WARMBOOT_DIR"),
        help="teamd's -L: at SIGUSR1 save each LAG's carrier, members and partners' last "
        "PDUs here, and on a warm start (WARM_RESTART_ENABLE_TABLE) start each LAG from them "
        "(SONiC: /var/warmboot/teamd; default $TEAMD_SHIM_WARMBOOT_DIR, else none)",
    )
    p.add_argument(
        "--record", metavar="FILE", help="also journal every dataplane write to FILE (tests)"
    )
    p.add_argument(
        "--dataplane",
        choices=("auto", "team", "appdb"),
        default="auto",
        help="team: the Linux team driver; appdb: APPL_DB/STATE_DB only; auto "
        "(default): team when the kernel has the driver, else appdb",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--version", action="version", version=f"teamd-shim {__version__}")
    sub = p.add_subparsers(dest="cmd")
    sub.add_parser(
        "health",
        help="exit 0 if the shim of this pid namespace (this container) "
        "answers and is active, or standby and READY (a container healthcheck)",
    )
    ctl = sub.add_parser(
        "ctl",
        help="query the shim that owns the LAGs (with --name: that instance), with "
        "teamdctl's words (the `teamdctl` command does the same with teamdctl's options)",
    )
    ctl.add_argument("lag")
    ctl.add_argument(
        "words",
        nargs="+",
        help="`state [view]`, `state dump`, `state item get PATH`, `state item set PATH "
        "VALUE` (runner.retry_count, runner.enable_retry_count_feature, "
        "ports.<port>.runner.partner_retry_count), `config dump`, `port present PORT`",
    )
    return p


def _ctl_path(ctl_dir: str, name: str, explicit: bool) -> str | Outcome:
    """`--name` given: that instance's socket. Else the owner's alias (control/alias.py): the
    one that owns the LAGs, whatever its name, however many stale sockets lie beside it."""
    if explicit:
        return os.path.join(ctl_dir, f"{name}.sock")
    problem = missing_alias(ctl_dir)
    if problem is not None:
        return Outcome(1, stderr=f"teamdctl_connect failed ({problem})\n")
    return alias_path(ctl_dir)


def _health(ctl_dir: str) -> int:
    """Several shims may share the control directory (teamd and teamd_bak during a handover):
    judge the one in our own pid namespace."""
    from teamd_shim.io.identity import pid_namespace

    mine = pid_namespace()
    for sock in instance_sockets(ctl_dir):
        try:
            info = InstanceInfo.from_json(request(sock, {"cmd": "info"}, timeout=1.0))
        except (ControlError, ContractError):
            continue
        if info.pidns != mine:
            continue
        ok = info.role == "active" or (info.role == "standby" and info.ready)
        print(
            f"teamd-shim {info.name}: {info.role}"
            f"{'' if ok else ' (' + (info.ready_detail or 'not ready') + ')'}"
        )
        return 0 if ok else 1
    print(f"teamd-shim: no shim of this pid namespace answers in {ctl_dir}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s teamd-shim[%(process)d] %(message)s",
    )
    if args.ctl_dir is None:
        # never beside the Redis socket, which every SONiC container mounts (hld §15)
        args.ctl_dir = DEFAULT_CTL_DIR
    if args.cmd == "health":
        return _health(args.ctl_dir)
    if args.cmd == "ctl":
        return _ctl(args, "--name" in (argv if argv is not None else sys.argv))
    return _run_daemon(args)


def _ctl(args: argparse.Namespace, explicit: bool) -> int:
    """`teamd-shim ctl LAG WORDS`: teamdctl's words (control/teamdctl.py)."""
    words = [args.lag, *args.words]
    return _emit(
        _teamdctl(words, ctl_dir=args.ctl_dir, name=args.name, explicit=explicit, echo_set=True)
    )


def teamdctl_main(argv: list[str] | None = None) -> int:
    """`teamdctl`: libteam's command line for SONiC's callers, served by the owner's control
    socket (the alias). The ctl dir as the shim's: --ctl-dir, $TEAMD_SHIM_CTL_DIR, default."""
    argv = sys.argv[1:] if argv is None else argv
    return _emit(_teamdctl(argv))


def _teamdctl(
    argv: list[str],
    *,
    ctl_dir: str | None = None,
    name: str = DEFAULT_NAME,
    explicit: bool = False,
    echo_set: bool = False,
) -> Outcome:
    """Both commands. `ctl_dir`, `name`, `explicit`: `teamd-shim ctl`'s options (`teamdctl`
    takes --ctl-dir among teamdctl's own); `echo_set`: `teamd-shim ctl` prints the value a set
    left, as it always has."""
    inv = teamdctl.parse(argv)
    if isinstance(inv, Outcome):
        return inv
    req = teamdctl.request(inv)
    if req is None:
        return teamdctl.unsupported(inv)
    ctl_dir = inv.ctl_dir or ctl_dir or os.environ.get("TEAMD_SHIM_CTL_DIR") or DEFAULT_CTL_DIR
    path = _ctl_path(ctl_dir, name, explicit)
    if isinstance(path, Outcome):
        return path
    try:
        out = request(path, req)
    except ControlError as e:
        return teamdctl.failed(str(e))
    return teamdctl.render(inv, out, echo_set=echo_set)


def _emit(out: Outcome) -> int:
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    return out.code


def _auto_role(
    args: argparse.Namespace,
    endpoint: sonic_db.Endpoint,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """`--role auto`: standby exactly when someone waits for us (a run naming us as its new
    instance; with --hot, a live owner to shadow), else active. Redis not answering is no
    answer: either role needs Redis before it does anything (an active claims the epoch
    there, a standby follows the owner's snapshot), so we ask again until it answers rather
    than guess: a guessed standby would wait for ever while the LAGs go down (the bug of a
    `--role standby` left in a container's command line), a guessed active could race a run
    that waits for us."""
    log = logging.getLogger("teamd_shim")
    delay, said = AUTO_RETRY_S, -AUTO_LOG_EVERY_S
    while True:
        asked = live_owner(endpoint) if args.hot else awaited_as_standby(endpoint, args.name)
        if asked is not None:
            break
        if clock() - said >= AUTO_LOG_EVERY_S:
            said = clock()
            log.warning(
                "%s: --role auto: redis at %s does not answer; the role is decided when it "
                "does (nothing is sent or written until then)",
                args.name,
                endpoint.url,
            )
        sleep(delay)
        delay = min(delay * 2, AUTO_RETRY_MAX_S)
    role = "standby" if asked else "active"
    log.info(
        "%s: --role auto: %s (%s)",
        args.name,
        role,
        ("a live owner to shadow" if asked else "no live owner: a cold start")
        if args.hot
        else ("a warm-restart run waits for us" if asked else "no run waits for us"),
    )
    return role


def _effective_role(args: argparse.Namespace, endpoint: sonic_db.Endpoint) -> str:
    """A standby nobody will hand the LAGs to starts as the active (a cold start), logged."""
    if args.role == "auto":
        return _auto_role(args, endpoint)
    if args.role != "standby":
        return str(args.role)
    log = logging.getLogger("teamd_shim")
    if args.hot:
        if live_owner(endpoint) is False:
            log.warning(
                "%s: hot standby with no live owner of the LAGs: cold start as the active",
                args.name,
            )
            return "active"
    elif awaited_as_standby(endpoint, args.name) is False:
        log.warning(
            "%s: started with --role standby but no warm-restart run is waiting for "
            "it (a restart of a container that a handover made active?): starting as "
            "active",
            args.name,
        )
        return "active"
    return "standby"


def _run_daemon(args: argparse.Namespace) -> int:
    try:
        endpoint = sonic_db.resolve(args.redis)
    except sonic_db.RedisUrlError as e:
        print(f"teamd-shim: {e}; nothing was started.", file=sys.stderr)
        return 2
    from teamd_shim.control.access import AccessError, AccessPolicy
    from teamd_shim.daemon.shim import Shim
    from teamd_shim.io.dataplane import DataplaneError, RecordingDataplane, make_dataplane
    from teamd_shim.io.links import LinkWatcher

    try:
        access = AccessPolicy.for_group(args.ctl_group)
    except AccessError as e:
        print(f"teamd-shim: {e}", file=sys.stderr)
        return 2
    shims: list[Shim] = []

    def kernel_changed(lag: str) -> None:
        """From a backend watcher thread: hand the LAG name to the shim's loop."""
        if shims:
            shims[0].kernel_changed(lag)

    links = LinkWatcher()  # the process's one rtnetlink watcher: the backend and the shim
    try:
        dataplane = make_dataplane(
            args.dataplane,
            links,
            kernel_changed,
            on_sonic=os.path.exists(sonic_db.DEFAULT_DB_CONFIG),
        )
    except DataplaneError as e:
        print(f"teamd-shim: {e}; nothing was started.", file=sys.stderr)
        return 2
    if args.record:
        dataplane = RecordingDataplane(
            dataplane, args.record, lambda: shims[0].rm.epoch if shims else None
        )
    role = _effective_role(args, endpoint)
    shim = Shim(
        endpoint,
        dataplane,
        links,
        name=args.name,
        ctl_dir=args.ctl_dir,
        access=access,
        role=role,
        hot=args.hot and role == "standby",
        warmboot_dir=args.warmboot_dir,
    )
    shims.append(shim)
    return asyncio.run(shim.run())


if __name__ == "__main__":
    sys.exit(main())
