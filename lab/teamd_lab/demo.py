"""`make demo`: lab up, LAGs negotiate with Open vSwitch, hitless warm restarts with the
partner's verdict after each, a cold restart for contrast, a verdict with numbers, lab down."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import click

from orchestrator.handover import Controller
from orchestrator.report import table
from orchestrator.supervisor import hot_pair
from teamd_lab.lab import Lab, LabError, LabNotFoundError
from teamd_lab.ovs import OvsPartner
from teamd_lab.record_analysis import load_caught_up, max_silence
from teamd_lab.report import format_lags
from teamd_lab.shim import shim_command
from teamd_shim.db.ownership import OwnerStore
from teamd_shim.db.sonic_db import Endpoint, parse_url

if TYPE_CHECKING:
    from orchestrator.runtime.docker import DockerRuntime
    from teamd_lab.compose import ComposeLab

DEMO_DIR = Path(os.environ.get("WARM_RESTART_DEMO_DIR", "/run/teamd-hitless-demo"))
PREFIX = "demo"
BUDGET_S = 1.1
UNPLANNED_BUDGET_S = 1.2  # a death: no PDU gap beyond this (hld §14)
FLAP_LIMIT_S = 3.0


def say(text: str) -> None:
    click.echo(text)
    sys.stdout.flush()


class PartnerLab(Protocol):
    """What the verdicts read of a lab: both `Lab` and the compose lab's `ComposeLab` have it."""

    @property
    def ovs(self) -> OvsPartner | None: ...

    @property
    def state(self) -> dict[str, Any]: ...

    def lags(self) -> list[str]: ...


def _partner(lab: PartnerLab) -> OvsPartner:
    if lab.ovs is None:
        raise LabError("the lab has no Open vSwitch partner to judge by (is the lab up?)")
    return lab.ovs


def negotiated(lab: PartnerLab) -> bool:
    bonds = lab.ovs.bond_show() if lab.ovs else {}
    return len(bonds) == len(lab.lags()) and all(
        b.get("lacp_status") == "negotiated" and all(b["members"].values()) for b in bonds.values()
    )


def wait_negotiated(lab: PartnerLab, limit: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if negotiated(lab):
            return time.monotonic() - t0
        time.sleep(0.1)
    return None


@dataclass
class Verdict:
    """What the partner saw during one restart."""

    kind: str
    ok: bool  # the restart command itself succeeded
    max_gap: float
    flaps: int
    expired: int
    defaulted: int
    wall: float
    note: str = ""
    budget: float = BUDGET_S

    @property
    def invisible(self) -> bool:
        return (
            self.ok
            and self.flaps == 0
            and self.expired == 0
            and self.defaulted == 0
            and self.max_gap <= self.budget
        )


def counters(lab: PartnerLab) -> tuple[int, int]:
    stats = _partner(lab).lacp_stats()
    return (
        sum(s["link_expired"] for b in stats.values() for s in b.values()),
        sum(s["link_defaulted"] for b in stats.values() for s in b.values()),
    )


def observe(lab: PartnerLab, kind: str, action: Callable[[], tuple[bool, str]]) -> Verdict:
    """Run `action` and judge it from the partner's side only (OVS and the PDU recorder)."""
    exp0, def0 = counters(lab)
    offset = _partner(lab).log_offset()
    start = time.monotonic()
    ok, note = action()
    wall = time.monotonic() - start
    wait_negotiated(lab, 15.0)
    time.sleep(3.2)  # longer than the partner's 3 s timeout: an expiry would show by now
    # the longest silence per port, the tail up to now included: a sender that stopped for good
    # leaves no next PDU to measure an inter-arrival to
    end = time.monotonic()
    gaps = list(
        max_silence(
            load_caught_up(Path(lab.state["recorder"]["out"]), end), start - 2.0, end, subtype=1
        ).values()
    )
    exp1, def1 = counters(lab)
    return Verdict(
        kind,
        ok,
        max(gaps) if gaps else float("inf"),
        len(_partner(lab).member_events(offset)),
        exp1 - exp0,
        def1 - def0,
        wall,
        note,
    )


def wait_hot_pair(
    lab: Lab, limit: float
) -> tuple[tuple[str, dict[str, str]], tuple[str, dict[str, str]]]:
    return wait_hot_pair_at(lab.redis_url, limit)


def wait_hot_pair_at(
    redis_url: str, limit: float
) -> tuple[tuple[str, dict[str, str]], tuple[str, dict[str, str]]]:
    store = OwnerStore(parse_url(redis_url))
    deadline = time.monotonic() + limit
    while True:
        try:
            return hot_pair(store)
        except LookupError as e:
            if time.monotonic() > deadline:
                raise LabError(f"no READY hot standby within {limit:.0f} s: {e}") from None
        time.sleep(0.1)


def promoted(store: OwnerStore, active: str, standby: str, what: str) -> tuple[bool, str]:
    """Right after the kill: did `standby` promote itself within 3 s (its own record says)?"""
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        rec = store.instance(standby)
        if rec.get("promoted_from") == active:
            return True, (
                f"{what} -> {standby} promoted itself in {rec.get('promoted_took_ms')} ms"
            )
        time.sleep(0.01)
    return False, f"{standby} did not promote itself within 3 s"


def unplanned_kill(lab: Lab) -> Verdict:
    """`warm-restart supervise`, a READY hot standby, then SIGKILL of the active: what the
    partner saw. The supervisor and its standbys are stopped afterwards (the promoted owner
    stays)."""
    sup = lab._spawn(
        lab.dut_ns,
        [str(Path(sys.executable).parent / "warm-restart"), "--redis", lab.redis_url, "supervise"],
        lab.workdir / "supervisor.log",
        "supervisor",
    )
    store = OwnerStore(parse_url(lab.redis_url))
    try:
        (active, arec), (standby, _) = wait_hot_pair(lab, 30.0)
        time.sleep(1.0)

        def kill() -> tuple[bool, str]:
            os.kill(int(arec["pid"]), signal.SIGKILL)
            return promoted(store, active, standby, f"kill -9 {active}")

        v = observe(lab, "unplanned", kill)
        return dataclasses.replace(v, budget=UNPLANNED_BUDGET_S)
    finally:
        sup.stop(5.0)
        for name, ref in lab.registered_shims().items():
            if store.instance(name).get("role") == "standby":
                ref.stop(5.0)  # the supervisor's next standby: a standby's SIGTERM is silent


def run_demo(lags: int, members: int, runs: int = 5, cold_runs: int = 1) -> int:
    total = 7
    try:
        old = Lab.load(DEMO_DIR)
        if old.state.get("phase") != "down":
            say(f"removing the lab left by an earlier demo in {DEMO_DIR}")
            old.down()
    except LabNotFoundError:
        pass
    lab = Lab(DEMO_DIR, prefix=PREFIX)
    say(
        f"[1/{total}] lab up: redis, {lags} LAGs x {members} members, Open vSwitch partner "
        "(userspace datapath, LACP fast), teamd-shim active, PDU recorder on the partner side"
    )
    try:
        lab.up(lags, members, shim_cmd=shim_command(lab), recorder=True)
    except LabError as e:
        say(f"demo: lab up failed: {e}")
        return 2
    verdicts: list[Verdict] = []
    try:
        say(f"[2/{total}] waiting for LACP to negotiate (limit 15 s)")
        took = wait_negotiated(lab, 15.0)
        if took is None:
            say(f"VERDICT: FAIL - not every LAG negotiated within 15 s (see {DEMO_DIR})")
            return 1
        time.sleep(1.0)
        say(f"      negotiated in {took:.1f} s")
        say(format_lags(lab))
        ctrl = Controller(parse_url(lab.redis_url))
        say(f"[3/{total}] {runs} hitless restarts (`warm-restart teamd`), judged by the partner")
        for i in range(runs):

            def hitless() -> tuple[bool, str]:
                out = ctrl.restart()
                return out.code == 0, f"{out.old} -> {out.new}" if out.code == 0 else out.reason

            v = observe(lab, "hitless", hitless)
            verdicts.append(v)
            say(
                f"      run {i + 1}: {v.note}; partner: largest PDU gap {v.max_gap:.3f} s, "
                f"{v.flaps} member flaps, expired +{v.expired}, defaulted +{v.defaulted} -> "
                f"{'invisible' if v.invisible else 'VISIBLE'}"
            )
        say(
            f"[4/{total}] 1 unplanned death: `warm-restart supervise` keeps a hot standby, "
            "then SIGKILL of the active (a crash), judged by the partner"
        )
        v = unplanned_kill(lab)
        verdicts.append(v)
        say(
            f"      {v.note}; partner: largest PDU gap {v.max_gap:.3f} s, {v.flaps} member "
            f"flaps, expired +{v.expired}, defaulted +{v.defaulted} -> "
            f"{'invisible' if v.invisible else 'VISIBLE'}"
        )
        say(
            f"[5/{total}] {cold_runs} cold restart(s) for contrast (stop the shim, start it "
            "again at once: faster than any container restart)"
        )
        for i in range(cold_runs):

            def cold(i: int = i) -> tuple[bool, str]:
                for ref in lab.registered_shims().values():
                    ref.stop(5.0)
                lab.start_shim(shim_command(lab), role=f"cold{i}")
                return True, "stop + start"

            v = observe(lab, "cold", cold)
            verdicts.append(v)
            say(
                f"      cold {i + 1}: partner: largest PDU gap {v.max_gap:.3f} s, {v.flaps} "
                f"member flaps, expired +{v.expired}, defaulted +{v.defaulted} -> "
                f"{'invisible' if v.invisible else 'VISIBLE'}"
            )
        say(f"[6/{total}] both sides' view after the restarts")
        say(format_lags(lab))
    finally:
        say(f"[7/{total}] lab down")
        lab.down()
    return summarize(verdicts, "cold (stop + start)", "the cold restart")


def summarize(verdicts: list[Verdict], contrast: str, contrast_text: str) -> int:
    """The table and the verdict line; exit 0 only if every hitless restart was invisible."""
    planned = [v for v in verdicts if v.kind == "hitless"]
    unplanned = [v for v in verdicts if v.kind == "unplanned"]
    cold_v = [v for v in verdicts if v.kind not in ("hitless", "unplanned")]
    rows = []
    for kind, vs in (
        ("hitless (warm-restart teamd)", planned),
        ("unplanned kill -9, supervised", unplanned),
        (contrast, cold_v),
    ):
        if vs:
            rows.append(
                [
                    kind,
                    str(len(vs)),
                    f"{max(v.max_gap for v in vs):.3f}",
                    str(sum(v.flaps for v in vs)),
                    str(sum(v.expired for v in vs)),
                    str(sum(v.defaulted for v in vs)),
                    f"{sorted(v.wall for v in vs)[len(vs) // 2]:.2f}",
                ]
            )
    say(
        table(
            [
                "restart",
                "runs",
                "largest PDU gap s",
                "member flaps",
                "expired",
                "defaulted",
                "median command s",
            ],
            rows,
        )
    )
    good = sum(v.invisible for v in planned)
    bad_unplanned = [v for v in unplanned if not v.invisible]
    kills = (
        f"; {len(unplanned)} unplanned kill -9 of the active, supervised, "
        f"{'was' if len(unplanned) == 1 else 'were'} invisible too (largest PDU gap "
        f"{max(v.max_gap for v in unplanned):.3f} s, budget {UNPLANNED_BUDGET_S} s)"
        if unplanned and not bad_unplanned
        else ""
    )
    if planned and good == len(planned) and not bad_unplanned:
        say(
            f"VERDICT: PASS - {good}/{len(planned)} hitless restarts were invisible to Open "
            f"vSwitch (largest PDU gap {max(v.max_gap for v in planned):.3f} s, budget "
            f"{BUDGET_S} s, flap limit {FLAP_LIMIT_S} s; 0 member flaps; Link Expired/Defaulted "
            f"unchanged){kills}; {contrast_text} caused {sum(v.flaps for v in cold_v)} member "
            "flaps"
        )
        return 0
    if bad_unplanned:
        say(
            f"VERDICT: FAIL - the unplanned kill was visible to the partner "
            f"({bad_unplanned[0].note}; largest PDU gap {bad_unplanned[0].max_gap:.3f} s, "
            f"{bad_unplanned[0].flaps} member flaps)"
        )
        return 1
    say(
        f"VERDICT: FAIL - only {good}/{len(planned)} hitless restarts were invisible to the partner"
    )
    return 1


def run_docker_demo(lags: int, members: int) -> int:
    """The compose lab: 5 hitless container restarts (one an upgrade to the second image tag,
    one the rollback), then `docker restart teamd` as SONiC does today, all judged by OVS."""
    from orchestrator.runtime.docker import DockerRuntime
    from teamd_lab.compose import ComposeError, ComposeLab

    total = 7
    upgrade_tag = os.environ.get("TEAMD_HITLESS_UPGRADE_IMAGE", "teamd-hitless/teamd:0.1.1.dev1")
    lab = ComposeLab(lags=lags, members=members)
    say(
        f"[1/{total}] docker compose up: redis, switch and peer holders, Open vSwitch partner, "
        f"wiring ({lags} LAGs x {members}), teamd container; PDU recorder on the partner side"
    )
    try:
        lab.down()  # whatever an earlier run left
    except ComposeError:
        pass
    try:
        lab.up()
    except ComposeError as e:
        say(f"demo: compose up failed: {e}")
        return 2
    verdicts: list[Verdict] = []
    endpoint = parse_url(lab.redis_url)
    try:
        say(f"[2/{total}] waiting for LACP to negotiate (limit 15 s)")
        took = wait_negotiated(lab, 15.0)
        if took is None:
            say("VERDICT: FAIL - not every LAG negotiated within 15 s")
            return 1
        say(f"      negotiated in {took:.1f} s")
        time.sleep(1.0)
        rt = DockerRuntime()
        verdicts += _docker_hitless_runs(lab, endpoint, rt, upgrade_tag, total)
        verdicts.append(_docker_unplanned(lab, endpoint, rt, total))
        verdicts.append(_docker_contrast(lab, total))
        say(f"[6/{total}] the partner's view after the restarts")
        for bond, b in sorted(lab.ovs.bond_show().items()):
            say(
                f"      {bond}: {b.get('lacp_status')}, members "
                + ", ".join(
                    f"{m} {'enabled' if up else 'disabled'}"
                    for m, up in sorted(b["members"].items())
                )
            )
    finally:
        say(f"[7/{total}] docker compose down")
        try:
            lab.down()
        except ComposeError as e:
            say(f"      {e}")
    return summarize(verdicts, "docker restart teamd", "`docker restart teamd`")


def _docker_hitless_runs(
    lab: ComposeLab, endpoint: Endpoint, rt: DockerRuntime, upgrade_tag: str, total: int
) -> list[Verdict]:
    """Five container handovers, one an upgrade by image and one the rollback."""
    from orchestrator.upgrade import rollback, upgrade

    verdicts: list[Verdict] = []
    steps = [
        ("same image", None),
        (f"upgrade-docker teamd {upgrade_tag}", "upgrade"),
        ("same image", None),
        ("rollback-docker teamd", "rollback"),
        ("same image", None),
    ]
    say(f"[3/{total}] {len(steps)} hitless container restarts, judged by the partner")
    for i, (what, kind) in enumerate(steps):

        def act(kind: str | None = kind) -> tuple[bool, str]:
            if kind == "upgrade":
                out = upgrade(
                    endpoint,
                    upgrade_tag,
                    tag=None,
                    cleanup_image=False,
                    timeout=20.0,
                    say=lambda s: None,
                )
            elif kind == "rollback":
                out = rollback(endpoint, timeout=20.0, say=lambda s: None)
            else:
                out = Controller(endpoint, rt).restart()
            return out.code == 0, (f"{out.old} -> {out.new}" if out.code == 0 else out.reason)

        v = observe(lab, "hitless", act)
        verdicts.append(v)
        version = rt.client.containers.get("teamd").image.labels.get(
            "org.opencontainers.image.version", "?"
        )
        say(
            f"      run {i + 1} ({what}): {v.note}, now image version {version}; partner: "
            f"largest PDU gap {v.max_gap:.3f} s, {v.flaps} member flaps, expired "
            f"+{v.expired}, defaulted +{v.defaulted} -> "
            f"{'invisible' if v.invisible else 'VISIBLE'}"
        )
    return verdicts


def _docker_unplanned(
    lab: ComposeLab, endpoint: Endpoint, rt: DockerRuntime, total: int
) -> Verdict:
    """`docker kill teamd` under the compose supervisor: the hot standby takes over."""
    say(
        f"[4/{total}] 1 unplanned death: the compose `supervisor` service keeps a hot "
        "standby container, then `docker kill teamd`, judged by the partner"
    )
    lab.start_supervisor()
    try:
        (active, _), (standby, _) = wait_hot_pair_at(lab.redis_url, 60.0)
        time.sleep(1.0)
        store = OwnerStore(endpoint)

        def kill() -> tuple[bool, str]:
            rt.client.api.kill("teamd", signal="SIGKILL")
            return promoted(store, active, standby, f"docker kill teamd ({active})")

        v = dataclasses.replace(observe(lab, "unplanned", kill), budget=UNPLANNED_BUDGET_S)
        wait_renamed = time.monotonic() + 10.0
        while time.monotonic() < wait_renamed:
            try:
                if rt.client.containers.get("teamd").attrs["State"]["Running"]:
                    break
            except Exception:
                pass
            time.sleep(0.2)
        say(
            f"      {v.note}; partner: largest PDU gap {v.max_gap:.3f} s, {v.flaps} member "
            f"flaps, expired +{v.expired}, defaulted +{v.defaulted} -> "
            f"{'invisible' if v.invisible else 'VISIBLE'}"
        )
    finally:
        lab.stop_supervisor()
    return v


def _docker_contrast(lab: ComposeLab, total: int) -> Verdict:
    """`docker restart teamd`, what SONiC does today."""
    import subprocess

    say(f"[5/{total}] `docker restart teamd` for contrast (what SONiC does today)")

    def restart() -> tuple[bool, str]:
        p = subprocess.run(["docker", "restart", "teamd"], capture_output=True, text=True)
        return p.returncode == 0, "docker restart teamd"

    v = observe(lab, "docker restart", restart)
    say(
        f"      docker restart: partner: largest PDU gap {v.max_gap:.3f} s, {v.flaps} "
        f"member flaps, expired +{v.expired}, defaulted +{v.defaulted} -> "
        f"{'invisible' if v.invisible else 'VISIBLE'}"
    )
    return v
