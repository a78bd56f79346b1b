"""`warm-restart`: the user's entry point (lab, demo; the hitless restart comes with the handover).

`--redis URL` belongs to the command group, before the subcommand, with the same defaults as
teamd-shim (`$TEAMD_SHIM_REDIS`, SONiC's database_config.json, loopback:6379).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
from teamd_shim import sonic_db

if TYPE_CHECKING:
    from .handover import Controller
    from .lab.lab import Lab

T = TypeVar("T")
DEFAULT_LAB_DIR = Path(os.environ.get("WARM_RESTART_LAB_DIR", "/run/teamd-hitless-lab"))


class Ctx:
    def __init__(self, redis_url: str | None) -> None:
        self.redis_url = redis_url

    def endpoint(self) -> sonic_db.Endpoint:
        try:
            return sonic_db.resolve(self.redis_url)
        except sonic_db.RedisUrlError as e:
            raise click.UsageError(str(e)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--redis", "redis_url", metavar="URL", envvar="TEAMD_SHIM_REDIS",
              help="unix:///path/redis.sock or redis://host:port "
              "(env TEAMD_SHIM_REDIS; default SONiC's database_config.json, else loopback:6379)")
@click.pass_context
def main(ctx: click.Context, redis_url: str | None) -> None:
    """Hitless warm restart of teamd with LACP in fast mode."""
    ctx.obj = Ctx(redis_url)


def _controller(ctx: Ctx, quiet: bool = False) -> Controller:
    from .handover import Controller

    return Controller(ctx.endpoint(), progress=(lambda s: None) if quiet else _say)


def _say(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


def _print_outcome(out: object, as_json: bool) -> None:
    import json

    from .handover import Outcome

    assert isinstance(out, Outcome)
    if as_json:
        click.echo(json.dumps(out.to_json(), indent=2, default=str))
        return
    if out.lags:
        from .report import table

        rows = []
        for lag, v in sorted(out.lags.items()):
            g = v["max_gap_s"]
            rows.append([lag, f"{g:.3f}" if g is not None else "-", str(len(v["ports"]))])
        click.echo(table(["LAG", "largest PDU gap at the partner (s)", "ports"], rows))
    if out.stages:
        click.echo("stages: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in out.stages.items()))
    for w in out.warnings:
        click.echo(f"WARNING: {w}")
    word = {"completed": "DONE", "rolled_back": "ROLLED BACK", "refused": "REFUSED",
            "rollback_incomplete": "ROLLBACK INCOMPLETE",
            "nothing": "NOTHING TO DO"}[out.result]
    click.echo(f"{word}: {out.reason or (out.old + ' -> ' + out.new)}"
               f" (run {out.run_id or '-'}, {out.wall_s:.2f} s)")


def _or_exit_unreachable(ctx: Ctx, what: str, fn: Callable[[], T]) -> T:
    """Run `fn`; if Redis cannot be reached, say so and exit 2 (nothing was changed)."""
    import redis as _redis

    try:
        return fn()
    except (_redis.exceptions.ConnectionError, _redis.exceptions.TimeoutError) as e:
        click.echo(f"{what}: redis unreachable at {ctx.endpoint().url}: {e}; nothing was "
                   "changed. Check that redis runs, or pass --redis URL", err=True)
        sys.exit(2)


@main.command("teamd")
@click.option("--exec", "exec_path", type=click.Path(dir_okay=False),
              help="process runtime: start the standby from this executable (an upgrade)")
@click.option("--runtime", "runtime_name", type=click.Choice(["auto", "process", "docker"]),
              default="auto", show_default=True,
              help="auto: docker when the active runs in a container, else process")
@click.option("--image", help="docker runtime: create the new teamd container from this image "
              "(default: the image the active runs)")
@click.option("--timeout", default=20.0, show_default=True, type=click.FloatRange(1, 600),
              help="seconds for the standby to become READY")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--json", "as_json", is_flag=True, help="print the outcome as JSON")
@click.pass_obj
def teamd_cmd(ctx: Ctx, exec_path: str | None, runtime_name: str, image: str | None,
              timeout: float, yes: bool, as_json: bool) -> None:
    """Hitless warm restart of teamd: exit 0 done, 1 rolled back, 2 refused (nothing changed)."""
    if not yes and not click.confirm("Restart teamd (hitless warm restart)?", default=True):
        click.echo("nothing was changed")
        sys.exit(2)
    from .handover import Controller

    ctrl = Controller(ctx.endpoint(), progress=(lambda s: None) if as_json else _say,
                      runtime_name=runtime_name, image=image)
    out = ctrl.restart(exec_path=exec_path, timeout=timeout, image=image)
    _print_outcome(out, as_json)
    sys.exit(out.code)


@main.command("upgrade-docker")
@click.argument("container", type=click.Choice(["teamd"]))
@click.argument("source", metavar="IMAGE|TARBALL")
@click.option("--tag", help="also tag the new image REPO:TAG (REPO of the running image)")
@click.option("--cleanup-image", is_flag=True,
              help="remove the previous image afterwards (then rollback-docker cannot work)")
@click.option("--timeout", default=20.0, show_default=True, type=click.FloatRange(1, 600))
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def upgrade_docker(ctx: Ctx, container: str, source: str, tag: str | None,
                   cleanup_image: bool, timeout: float, yes: bool, as_json: bool) -> None:
    """Hitless upgrade of the teamd container to IMAGE (a tarball is `docker load`ed first).

    Exit 0 done, 1 rolled back (the old container runs on), 2 refused (nothing changed)."""
    del container
    if not yes and not click.confirm(f"Upgrade teamd to {source} (hitless)?", default=True):
        click.echo("nothing was changed")
        sys.exit(2)
    from .upgrade import upgrade

    say = (lambda s: None) if as_json else _say
    out = upgrade(ctx.endpoint(), source, tag=tag, cleanup_image=cleanup_image, timeout=timeout,
                  say=say)
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
    if not yes and not click.confirm("Roll teamd back to the previous image (hitless)?",
                                     default=True):
        click.echo("nothing was changed")
        sys.exit(2)
    from .upgrade import rollback

    say = (lambda s: None) if as_json else _say
    out = rollback(ctx.endpoint(), timeout=timeout, say=say)
    if out.result == "refused":
        say(f"      refused: {out.reason}")
    _print_outcome(out, as_json)
    sys.exit(out.code)


@main.command()
@click.option("--runtime", "runtime_name", type=click.Choice(["auto", "process", "docker"]),
              default="auto", show_default=True,
              help="auto: docker when the active runs in a container, else process")
@click.option("--name", help="instance name of a cold-started active (default: the owner's "
              "base name, else teamd); hot standbys are NAME~sN")
@click.option("--shim-arg", "shim_args", multiple=True, metavar="ARG",
              help="with nothing running to copy from: an argument for a cold-started "
              "teamd-shim (repeatable; --redis is added)")
@click.pass_obj
def supervise(ctx: Ctx, runtime_name: str, name: str | None, shim_args: tuple[str, ...]) -> None:
    """Keep a hot standby beside the active, so even a crash of the active is invisible.

    Runs in the foreground, in the members' network namespace; SIGTERM/SIGINT stop it and leave
    the active and the standby running. It adopts what runs, starts one hot standby (which
    promotes itself within milliseconds when the active dies or hangs), starts a new one after
    every promotion, backs off a standby that keeps dying, and cold-starts an active when
    there is none. Exit 2: refused (another supervisor runs, redis unreachable)."""
    from .supervisor import Supervisor, SupervisorError

    def say(line: str) -> None:
        _say(f"{time.strftime('%H:%M:%S')} supervise: {line}")

    try:
        sup = Supervisor(ctx.endpoint(), runtime_name=runtime_name, say=say, name=name,
                         shim_args=shim_args)
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
    from .status import collect, render

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
    from .journal import Journal

    _or_exit_unreachable(ctx, "config", lambda: Journal(ctx.endpoint()).set_warm_enabled(value))
    click.echo(f"WARM_RESTART_ENABLE_TABLE|teamd enable={value}")


@main.group()
def lab() -> None:
    """The embedded lab: private redis, DUT and partner namespaces, Open vSwitch partner."""


@lab.command("up")
@click.option("--lags", default=4, show_default=True, type=click.IntRange(1, 512))
@click.option("--members", default=2, show_default=True, type=click.IntRange(1, 16))
@click.option("--dir", "workdir", type=click.Path(path_type=Path), default=DEFAULT_LAB_DIR,
              show_default=True)
@click.option("--prefix", default="wr", show_default=True,
              help="name prefix of the namespaces (<prefix>-dut, <prefix>-ptnr)")
@click.option("--no-shim", is_flag=True, help="do not start the active teamd-shim")
@click.option("--runtime", "runtime_name", type=click.Choice(["process", "docker"]),
              default="process", show_default=True,
              help="docker: the docker-compose lab (docker-compose.yml), teamd in a container")
def lab_up(lags: int, members: int, workdir: Path, prefix: str, no_shim: bool,
           runtime_name: str) -> None:
    """Bring the lab up and start the active shim."""
    if runtime_name == "docker":
        from .lab.compose import ComposeError, ComposeLab

        try:
            lab_c = ComposeLab(lags=lags, members=members).up()
        except ComposeError as e:
            click.echo(f"lab up: {e}", err=True)
            sys.exit(2)
        click.echo(f"compose lab is up in {lab_c.rundir} (project teamd-hitless)")
        click.echo(f"  redis:      {lab_c.redis_url}")
        click.echo(f"  restart:    warm-restart --redis {lab_c.redis_url} teamd --yes")
        click.echo("  partner:    docker exec teamd-hitless-partner-1 ovs-appctl -t "
                   "ovs-vswitchd bond/show")
        click.echo("  tear down:  warm-restart lab down --runtime docker")
        return
    from .lab.lab import Lab, LabError
    from .lab.shim import shim_command

    lab_ = Lab(workdir, prefix=prefix)
    try:
        lab_.up(lags, members, shim_cmd=None if no_shim else shim_command(lab_))
    except LabError as e:
        click.echo(f"lab up: {e}", err=True)
        sys.exit(2)
    _print_reach(lab_)


def _print_reach(lab_: object) -> None:
    from .lab.lab import Lab

    assert isinstance(lab_, Lab)
    click.echo(f"lab is up in {lab_.workdir}")
    click.echo(f"  redis:       {lab_.redis_url}")
    click.echo(f"               redis-cli -s {lab_.redis_socket} -n 6 keys '*'")
    click.echo(f"  DUT ns:      {lab_.dut_ns}   (ip netns exec {lab_.dut_ns} ip link)")
    click.echo(f"  partner ns:  {lab_.ptnr_ns}  (OVS: {lab_.ovs_appctl_hint()} bond/show)")
    click.echo(f"  shim log:    {lab_.workdir / 'shim-active.log'}")
    click.echo("  tear down:   warm-restart lab down")


def _load_lab(workdir: Path) -> Lab:
    from .lab.lab import Lab, LabError

    try:
        return Lab.load(workdir)
    except LabError as e:
        click.echo(f"lab: {e}", err=True)
        sys.exit(2)


@lab.command("wire")
@click.option("--lags", default=4, show_default=True, type=click.IntRange(1, 512))
@click.option("--members", default=2, show_default=True, type=click.IntRange(1, 16))
@click.option("--peer-pid", default=1, show_default=True, type=int,
              help="a process in the partner-side network namespace")
@click.option("--ovs-db", default="unix:/run/openvswitch/db.sock", show_default=True,
              help="the Open vSwitch partner's database socket")
@click.pass_obj
def lab_wire(ctx: Ctx, lags: int, members: int, peer_pid: int, ovs_db: str) -> None:
    """The compose lab's one-shot wiring step (run in the wiring container, see
    docker-compose.yml): veth pairs, the partner's bonds, CONFIG_DB."""
    from .lab.wire import WireError, wire

    try:
        wire(lags, members, ctx.endpoint().url, peer_pid, ovs_db, _say)
    except (WireError, OSError) as e:
        click.echo(f"lab wire: {e}", err=True)
        sys.exit(1)


@lab.command("status")
@click.option("--dir", "workdir", type=click.Path(path_type=Path), default=DEFAULT_LAB_DIR,
              show_default=True)
@click.option("--json", "as_json", is_flag=True)
def lab_status(workdir: Path, as_json: bool) -> None:
    """What the lab holds and what the partner sees."""
    import json

    lab_ = _load_lab(workdir)
    st = lab_.status()
    if as_json:
        click.echo(json.dumps(st, indent=2, default=str))
    else:
        from .report import format_lab_status

        click.echo(format_lab_status(st))


@lab.command("down")
@click.option("--dir", "workdir", type=click.Path(path_type=Path), default=DEFAULT_LAB_DIR,
              show_default=True)
@click.option("--runtime", "runtime_name", type=click.Choice(["process", "docker"]),
              default="process", show_default=True)
def lab_down(workdir: Path, runtime_name: str) -> None:
    """Remove exactly what `lab up` created."""
    if runtime_name == "docker":
        from .lab.compose import ComposeError, ComposeLab

        try:
            click.echo("lab down: " + ", ".join(ComposeLab().down()))
        except ComposeError as e:
            click.echo(f"lab down: {e}", err=True)
            sys.exit(1)
        return
    from .lab.lab import LabError

    lab_ = _load_lab(workdir)
    try:
        removed = lab_.down()
    except LabError as e:
        click.echo(f"lab down: {e}", err=True)
        click.echo(f"lab down: what could not be removed is still listed in {workdir}/lab.json;"
                   " fix the cause and run `warm-restart lab down` again", err=True)
        sys.exit(1)
    click.echo("lab down: " + (", ".join(removed) if removed else "nothing to remove"))


@main.command()
@click.option("--lags", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--members", default=2, show_default=True, type=click.IntRange(1, 8))
@click.option("--runs", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--cold-runs", default=1, show_default=True, type=click.IntRange(0, 10))
@click.option("--runtime", "runtime_name", type=click.Choice(["process", "docker"]),
              default="process", show_default=True,
              help="docker: the docker-compose lab, container restarts incl. an upgrade and a "
              "rollback by image, `docker restart teamd` as the contrast (needs `make images`)")
def demo(lags: int, members: int, runs: int, cold_runs: int, runtime_name: str) -> None:
    """Lab up, LACP negotiates, hitless restarts judged by the partner, a cold one, lab down."""
    if runtime_name == "docker":
        from .demo import run_docker_demo

        sys.exit(run_docker_demo(lags, members))
    from .demo import run_demo

    sys.exit(run_demo(lags, members, runs, cold_runs))


if __name__ == "__main__":
    main()
