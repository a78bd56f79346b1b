"""`warm-restart`: the user's entry point: the hitless restart, the supervisor, status, recovery.

The lab and the demo are not here: they are the `teamd-lab` command of the lab distribution
(lab/), which the product never imports.

`--redis URL` belongs to the command group, before the subcommand, with the same defaults as
teamd-shim (`$TEAMD_SHIM_REDIS`, SONiC's database_config.json, loopback:6379).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from teamd_shim.db import sonic_db

if TYPE_CHECKING:
    from orchestrator.handover import Controller

T = TypeVar("T")


class Ctx:
    def __init__(self, redis_url: str | None) -> None:
        self.redis_url = redis_url

    def endpoint(self) -> sonic_db.Endpoint:
        try:
            return sonic_db.resolve(self.redis_url)
        except sonic_db.RedisUrlError as e:
            raise click.UsageError(str(e)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    envvar="TEAMD_SHIM_REDIS",
    help="unix:///path/redis.sock or redis://host:port "
    "(env TEAMD_SHIM_REDIS; default SONiC's database_config.json, else loopback:6379)",
)
@click.option(
    "--container-name",
    metavar="NAME",
    envvar="TEAMD_HITLESS_CONTAINER",
    callback=lambda _c, _p, v: _container_name(v),
    help="docker runtime: the shim containers' base name (env TEAMD_HITLESS_CONTAINER): a "
    "handover renames NAME to NAME_bak, the supervisor's standby is NAME_standby. Default: the "
    "owner's container keeps its own name (`teamd`). The SONiC shape (containers/sonic/) uses "
    "teamd-lacp, since its `teamd` is the supervisor's container",
)
@click.pass_context
def main(ctx: click.Context, redis_url: str | None, container_name: str | None) -> None:
    """Hitless warm restart of teamd with LACP in fast mode."""
    if container_name:
        # read by every DockerRuntime / DockerSupervised of this process
        os.environ["TEAMD_HITLESS_CONTAINER"] = container_name
    ctx.obj = Ctx(redis_url)


def _container_name(value: str | None) -> str | None:
    """Docker's rule for a container name, and no `~` (the shim's instance-name separator)."""
    import re

    if value and not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", value):
        raise click.BadParameter(
            f"{value!r} is not a container name Docker accepts ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"
        )
    return value or None


def _controller(ctx: Ctx, quiet: bool = False) -> Controller:
    from orchestrator.handover import Controller

    return Controller(ctx.endpoint(), progress=(lambda s: None) if quiet else _say)


def _say(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


def _print_outcome(out: object, as_json: bool) -> None:
    import json

    from orchestrator.handover import Outcome

    assert isinstance(out, Outcome)
    if as_json:
        click.echo(json.dumps(out.to_json(), indent=2, default=str))
        return
    if out.lags:
        from orchestrator.report import table

        rows = []
        for lag, v in sorted(out.lags.items()):
            g = v["max_gap_s"]
            rows.append([lag, f"{g:.3f}" if g is not None else "-", str(len(v["ports"]))])
        click.echo(table(["LAG", "largest PDU gap at the partner (s)", "ports"], rows))
    if out.stages:
        click.echo("stages: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in out.stages.items()))
    for w in out.warnings:
        click.echo(f"WARNING: {w}")
    word = {
        "completed": "DONE",
        "rolled_back": "ROLLED BACK",
        "refused": "REFUSED",
        "rollback_incomplete": "ROLLBACK INCOMPLETE",
        "nothing": "NOTHING TO DO",
    }[out.result]
    click.echo(
        f"{word}: {out.reason or (out.old + ' -> ' + out.new)}"
        f" (run {out.run_id or '-'}, {out.wall_s:.2f} s)"
    )


def _or_exit_unreachable(ctx: Ctx, what: str, fn: Callable[[], T]) -> T:
    """Run `fn`; if Redis cannot be reached, say so and exit 2 (nothing was changed)."""
    import redis as _redis

    try:
        return fn()
    except (_redis.exceptions.ConnectionError, _redis.exceptions.TimeoutError) as e:
        click.echo(
            f"{what}: redis unreachable at {ctx.endpoint().url}: {e}; nothing was "
            "changed. Check that redis runs, or pass --redis URL",
            err=True,
        )
        sys.exit(2)


@main.command("teamd")
@click.option(
    "--exec",
    "exec_path",
    type=click.Path(dir_okay=False),
    help="process runtime: start the standby from this executable (an upgrade)",
)
@click.option(
    "--runtime",
    "runtime_name",
    type=click.Choice(["auto", "process", "docker"]),
    default="auto",
    show_default=True,
    help="auto: docker when the active runs in a container, else process",
)
@click.option(
    "--image",
    help="docker runtime: create the new teamd container from this image "
    "(default: the image the active runs)",
)
@click.option(
    "--timeout",
    default=20.0,
    show_default=True,
    type=click.FloatRange(1, 600),
    help="give the standby up after this many seconds without progress towards READY (its "
    "CPU time while it starts, then what it says about READY); at most 6x in all",
)
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--json", "as_json", is_flag=True, help="print the outcome as JSON")
@click.pass_obj
def teamd_cmd(
    ctx: Ctx,
    exec_path: str | None,
    runtime_name: str,
    image: str | None,
    timeout: float,
    yes: bool,
    as_json: bool,
) -> None:
    """Hitless warm restart of teamd: exit 0 done, 1 rolled back, 2 refused (nothing changed)."""
    if not yes and not click.confirm("Restart teamd (hitless warm restart)?", default=True):
        click.echo("nothing was changed")
        sys.exit(2)
    from orchestrator.handover import Controller

    ctrl = Controller(
        ctx.endpoint(),
        progress=(lambda s: None) if as_json else _say,
        runtime_name=runtime_name,
        image=image,
    )
    out = ctrl.restart(exec_path=exec_path, timeout=timeout, image=image)
    _print_outcome(out, as_json)
    sys.exit(out.code)


@main.command("upgrade-docker")
@click.argument("container", type=click.Choice(["teamd"]))
@click.argument("source", metavar="IMAGE|TARBALL")
@click.option("--tag", help="also tag the new image REPO:TAG (REPO of the running image)")
@click.option(
    "--cleanup-image",
    is_flag=True,
    help="remove the previous image afterwards (then rollback-docker cannot work)",
)
@click.option("--timeout", default=20.0, show_default=True, type=click.FloatRange(1, 600))
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def upgrade_docker(
    ctx: Ctx,
    container: str,
    source: str,
    tag: str | None,
    cleanup_image: bool,
    timeout: float,
    yes: bool,
    as_json: bool,
) -> None:
    """Hitless upgrade of the teamd container to IMAGE (a tarball is `docker load`ed first).

    Exit 0 done, 1 rolled back (the old container runs on), 2 refused (nothing changed)."""
    del container
    if not yes and not click.confirm(f"Upgrade teamd to {source} (hitless)?", default=True):
        click.echo("nothing was changed")
        sys.exit(2)
    from orchestrator.upgrade import upgrade

    say = (lambda s: None) if as_json else _say
    out = upgrade(
        ctx.endpoint(), source, tag=tag, cleanup_image=cleanup_image, timeout=timeout, say=say
    )
    if out.result == "refused":
        say(f"      refused: {out.reason}")
    _print_outcome(out, as_json)
    sys.exit(out.code)


@main.command("rollback-docker")
@click.argument("container", type=click.Choice(["teamd"]))
@click.option("--timeout", default=20.0, show_default=True, type=click.FloatRange(1, 600))
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def rollback_docker(ctx: Ctx, container: str, timeout: float, yes: bool, as_json: bool) -> None:
    """Hitless return of the teamd container to the image it ran before the last upgrade."""
    del container
    if not yes and not click.confirm(
        "Roll teamd back to the previous image (hitless)?", default=True
    ):
        click.echo("nothing was changed")
        sys.exit(2)
    from orchestrator.upgrade import rollback

    say = (lambda s: None) if as_json else _say
    out = rollback(ctx.endpoint(), timeout=timeout, say=say)
    if out.result == "refused":
        say(f"      refused: {out.reason}")
    _print_outcome(out, as_json)
    sys.exit(out.code)


@main.command()
@click.option(
    "--runtime",
    "runtime_name",
    type=click.Choice(["auto", "process", "docker"]),
    default="auto",
    show_default=True,
    help="auto: docker when the active runs in a container, else process",
)
@click.option(
    "--name",
    help="instance name of a cold-started active (default: the owner's "
    "base name, else teamd); hot standbys are NAME~sN",
)
@click.option(
    "--shim-arg",
    "shim_args",
    multiple=True,
    metavar="ARG",
    help="with nothing running to copy from: an argument for a cold-started "
    "teamd-shim (repeatable; --redis is added)",
)
@click.pass_obj
def supervise(ctx: Ctx, runtime_name: str, name: str | None, shim_args: tuple[str, ...]) -> None:
    """Keep a hot standby beside the active, so even a crash of the active is invisible.

    Runs in the foreground, in the members' network namespace; SIGTERM/SIGINT stop it and leave
    the active and the standby running. It adopts what runs, starts one hot standby (which
    promotes itself within milliseconds when the active dies or hangs), starts a new one after
    every promotion, backs off a standby that keeps dying, and cold-starts an active when
    there is none. Exit 2: refused (another supervisor runs, redis unreachable)."""
    from orchestrator.supervisor import Supervisor, SupervisorError

    def say(line: str) -> None:
        _say(f"{time.strftime('%H:%M:%S')} supervise: {line}")

    try:
        sup = Supervisor(
            ctx.endpoint(), runtime_name=runtime_name, say=say, name=name, shim_args=shim_args
        )
        sys.exit(sup.run())
    except SupervisorError as e:
        click.echo(f"supervise: {e}", err=True)
        sys.exit(2)


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def recover(ctx: Ctx, as_json: bool) -> None:
    """Finish or roll back a warm restart whose orchestrator died; says which."""
    out = _or_exit_unreachable(ctx, "recover", lambda: _controller(ctx, quiet=as_json).recover())
    _print_outcome(out, as_json)
    sys.exit(out.code)


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status(ctx: Ctx, as_json: bool) -> None:
    """Active instance and version, LAGs and members with their LACP state, last run."""
    from orchestrator.status import collect, render

    st = _or_exit_unreachable(ctx, "status", lambda: collect(ctx.endpoint()))
    if as_json:
        import json

        click.echo(json.dumps(st, indent=2))
    else:
        click.echo(render(st))


@main.group()
def config() -> None:
    """STATE_DB WARM_RESTART_ENABLE_TABLE, as SONiC's `config warm_restart` does."""


@config.command("enable")
@click.argument("module", type=click.Choice(["teamd"]))
@click.pass_obj
def config_enable(ctx: Ctx, module: str) -> None:
    """Set WARM_RESTART_ENABLE_TABLE|teamd enable=true."""
    _set_enable(ctx, "true")


@config.command("disable")
@click.argument("module", type=click.Choice(["teamd"]))
@click.pass_obj
def config_disable(ctx: Ctx, module: str) -> None:
    """Set WARM_RESTART_ENABLE_TABLE|teamd enable=false."""
    _set_enable(ctx, "false")


def _set_enable(ctx: Ctx, value: str) -> None:
    from orchestrator.journal import Journal

    _or_exit_unreachable(ctx, "config", lambda: Journal(ctx.endpoint()).set_warm_enabled(value))
    click.echo(f"WARM_RESTART_ENABLE_TABLE|teamd enable={value}")


if __name__ == "__main__":
    main()
