"""`teamd-lab`: the embedded lab and the demo (not part of the product; README "The lab").

Private redis, a DUT and a partner network namespace, an Open vSwitch partner in LACP fast mode;
or the docker-compose lab (`--runtime docker`). The demo brings a lab up, restarts teamd through
the product's own `warm-restart` code and judges every restart by what the partner saw.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orchestrator.cli import Ctx  # the lab resolves --redis as warm-restart does

if TYPE_CHECKING:
    from teamd_lab.lab import Lab

DEFAULT_LAB_DIR = Path(os.environ.get("WARM_RESTART_LAB_DIR", "/run/teamd-hitless-lab"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    envvar="TEAMD_SHIM_REDIS",
    help="the redis of `wire` (env TEAMD_SHIM_REDIS; default as warm-restart)",
)
@click.pass_context
def main(ctx: click.Context, redis_url: str | None) -> None:
    """The embedded lab: private redis, DUT and partner namespaces, Open vSwitch partner."""
    ctx.obj = Ctx(redis_url)


def _say(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


@main.command("up")
@click.option("--lags", default=4, show_default=True, type=click.IntRange(1, 1024))
@click.option("--members", default=2, show_default=True, type=click.IntRange(1, 16))
@click.option(
    "--dir", "workdir", type=click.Path(path_type=Path), default=DEFAULT_LAB_DIR, show_default=True
)
@click.option(
    "--prefix",
    default="wr",
    show_default=True,
    help="name prefix of the namespaces (<prefix>-dut, <prefix>-ptnr)",
)
@click.option("--no-shim", is_flag=True, help="do not start the active teamd-shim")
@click.option(
    "--runtime",
    "runtime_name",
    type=click.Choice(["process", "docker"]),
    default="process",
    show_default=True,
    help="docker: the docker-compose lab (docker-compose.yml), teamd in a container",
)
def lab_up(
    lags: int, members: int, workdir: Path, prefix: str, no_shim: bool, runtime_name: str
) -> None:
    """Bring the lab up and start the active shim."""
    if runtime_name == "docker":
        from teamd_lab.compose import ComposeError, ComposeLab

        try:
            lab_c = ComposeLab(lags=lags, members=members).up()
        except ComposeError as e:
            click.echo(f"teamd-lab up: {e}", err=True)
            sys.exit(2)
        click.echo(f"compose lab is up in {lab_c.rundir} (project teamd-hitless)")
        click.echo(f"  redis:      {lab_c.redis_url}")
        click.echo(f"  restart:    warm-restart --redis {lab_c.redis_url} teamd --yes")
        click.echo(
            "  partner:    docker exec teamd-hitless-partner-1 ovs-appctl -t ovs-vswitchd bond/show"
        )
        click.echo("  tear down:  teamd-lab down --runtime docker")
        return
    from teamd_lab.lab import Lab, LabError
    from teamd_lab.shim import shim_command

    lab_ = Lab(workdir, prefix=prefix)
    try:
        lab_.up(lags, members, shim_cmd=None if no_shim else shim_command(lab_))
    except LabError as e:
        click.echo(f"teamd-lab up: {e}", err=True)
        sys.exit(2)
    _print_reach(lab_)


def _print_reach(lab_: object) -> None:
    from teamd_lab.lab import Lab

    assert isinstance(lab_, Lab)
    click.echo(f"lab is up in {lab_.workdir}")
    click.echo(f"  redis:       {lab_.redis_url}")
    click.echo(f"               redis-cli -s {lab_.redis_socket} -n 6 keys '*'")
    click.echo(f"  DUT ns:      {lab_.dut_ns}   (ip netns exec {lab_.dut_ns} ip link)")
    click.echo(f"  partner ns:  {lab_.ptnr_ns}  (OVS: {lab_.ovs_appctl_hint()} bond/show)")
    click.echo(f"  shim log:    {lab_.workdir / 'shim-active.log'}")
    click.echo("  tear down:   teamd-lab down")


def _load_lab(workdir: Path) -> Lab:
    from teamd_lab.lab import Lab, LabError

    try:
        return Lab.load(workdir)
    except LabError as e:
        click.echo(f"teamd-lab: {e}", err=True)
        sys.exit(2)


@main.command("wire")
@click.option("--lags", default=4, show_default=True, type=click.IntRange(1, 1024))
@click.option("--members", default=2, show_default=True, type=click.IntRange(1, 16))
@click.option(
    "--peer-pid",
    default=1,
    show_default=True,
    type=int,
    help="a process in the partner-side network namespace",
)
@click.option(
    "--ovs-db",
    default="unix:/run/openvswitch/db.sock",
    show_default=True,
    help="the Open vSwitch partner's database socket",
)
@click.pass_obj
def lab_wire(ctx: Ctx, lags: int, members: int, peer_pid: int, ovs_db: str) -> None:
    """The compose lab's one-shot wiring step (run in the wiring container, see
    docker-compose.yml): veth pairs, the partner's bonds, CONFIG_DB."""
    from teamd_lab.wire import WireError, wire

    try:
        wire(lags, members, ctx.endpoint().url, peer_pid, ovs_db, _say)
    except (WireError, OSError) as e:
        click.echo(f"teamd-lab wire: {e}", err=True)
        sys.exit(1)


@main.command("status")
@click.option(
    "--dir", "workdir", type=click.Path(path_type=Path), default=DEFAULT_LAB_DIR, show_default=True
)
@click.option("--json", "as_json", is_flag=True)
def lab_status(workdir: Path, as_json: bool) -> None:
    """What the lab holds and what the partner sees."""
    import json

    lab_ = _load_lab(workdir)
    st = lab_.status()
    if as_json:
        click.echo(json.dumps(st, indent=2, default=str))
    else:
        from teamd_lab.report import format_lab_status

        click.echo(format_lab_status(st))


@main.command("down")
@click.option(
    "--dir", "workdir", type=click.Path(path_type=Path), default=DEFAULT_LAB_DIR, show_default=True
)
@click.option(
    "--runtime",
    "runtime_name",
    type=click.Choice(["process", "docker"]),
    default="process",
    show_default=True,
)
def lab_down(workdir: Path, runtime_name: str) -> None:
    """Remove exactly what `lab up` created."""
    if runtime_name == "docker":
        from teamd_lab.compose import ComposeError, ComposeLab

        try:
            click.echo("teamd-lab down: " + ", ".join(ComposeLab().down()))
        except ComposeError as e:
            click.echo(f"teamd-lab down: {e}", err=True)
            sys.exit(1)
        return
    from teamd_lab.lab import LabError

    lab_ = _load_lab(workdir)
    try:
        removed = lab_.down()
    except LabError as e:
        click.echo(f"teamd-lab down: {e}", err=True)
        click.echo(
            f"teamd-lab down: what could not be removed is still listed in "
            f"{workdir}/lab.json; fix the cause and run `teamd-lab down` again",
            err=True,
        )
        sys.exit(1)
    click.echo("teamd-lab down: " + (", ".join(removed) if removed else "nothing to remove"))


@main.command()
@click.option("--lags", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--members", default=2, show_default=True, type=click.IntRange(1, 8))
@click.option("--runs", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--cold-runs", default=1, show_default=True, type=click.IntRange(0, 10))
@click.option(
    "--runtime",
    "runtime_name",
    type=click.Choice(["process", "docker"]),
    default="process",
    show_default=True,
    help="docker: the docker-compose lab, container restarts incl. an upgrade and a "
    "rollback by image, `docker restart teamd` as the contrast (needs `make images`)",
)
def demo(lags: int, members: int, runs: int, cold_runs: int, runtime_name: str) -> None:
    """Lab up, LACP negotiates, hitless restarts judged by the partner, a cold one, lab down."""
    if runtime_name == "docker":
        from teamd_lab.demo import run_docker_demo

        sys.exit(run_docker_demo(lags, members))
    from teamd_lab.demo import run_demo

    sys.exit(run_demo(lags, members, runs, cold_runs))


if __name__ == "__main__":
    main()
