#!/usr/bin/env python3
"""Hitless vs cold restart of teamd-shim, as the LACP partner sees it, at 1..64 LAGs x 2.

Why: the product's whole claim is that `warm-restart teamd` restarts the LACP speaker without
the partner noticing, while a plain restart (what SONiC does today on a teamd container
restart) makes every fast-rate LAG flap. Claims about "the partner did not notice" are only
worth the partner-side measurement behind them, so this benchmark puts both methods side by
side on the same lab and judges them by what the partner (Open vSwitch, LACP fast rate) saw:

* the inter-arrival of our PDUs per partner port in a window around each restart, from the
  lab's AF_PACKET recorder (budget 1.1 s through a handover; 3.0 s is the flap limit);
* OVS's `lacp/show-stats` Link Expired / Link Defaulted deltas and the `member X:
  enabled|disabled` lines of its log (a disabled line is a member leaving the bond: a flap).

Methods, each repeated `--runs` times per size, interleaved (hitless, cold, hitless, ...) so
that drift in machine load hits both alike:

* hitless: `warm-restart --redis <lab redis> teamd --yes --json` as a subprocess; its wall
  time and its per-stage durations (from the JSON Outcome) are recorded.
* cold: SIGTERM to the running shim (a cold stop: it removes its LAGs, as teamd does), wait
  for it to exit, sleep `--cold-gap` seconds (default 0: the best case; a real container
  restart takes far longer), start a new shim. Wall time is SIGTERM to the new process spawned.

Before each restart every bond must be negotiated with every member enabled; after it we wait
at least MIN_AFTER_S and until that holds again (twice, a poll apart), so one restart's
recovery never leaks into the next one's window. A benchmark, not a test: it exits 0 whatever
it measured, non-zero only if a size could not be measured.

The stock-teamd way (libteam `teamd` restarted) needs the team driver, which this kernel lacks;
it is measured in the kernel VM tier, not here.

Run as root: `.venv/bin/python bench/handover.py` (options `--sizes 1,8,32,64 --runs 5
--cold-gap 0`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

# bench/ is not a package: the shared lab helpers live in the sibling steady_state.py
sys.path.insert(0, str(Path(__file__).resolve().parent))

from steady_state import (
    MAIN_PID,
    BenchError,
    clear_leftover,
    flap_counts,
    lab_down,
    machine_info,
    not_negotiated,
    progress,
)

from teamd_lab.lab import Lab
from teamd_lab.ovs_text import stats_delta
from teamd_lab.record_analysis import Frame, parse_records
from teamd_lab.shim import shim_command

REPO = Path(__file__).resolve().parents[1]
WARM_RESTART = Path(sys.executable).parent / "warm-restart"
NOMINAL_S, BUDGET_S, FLAP_LIMIT_S = 1.0, 1.1, 3.0
PRE_S = 2.5  # window before the restart command: a couple of ordinary PDUs per port
MIN_AFTER_S = 4.0  # wait at least this long after a restart (>= 3 s, the flap limit)
SETTLE_POLL_S = 0.5
SETTLE_LIMIT_S = 60.0
HITLESS_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
NEGOTIATE_BASE_S = 30.0  # as steady_state: a base plus a per-LAG share
NEGOTIATE_PER_LAG_S = 0.5
STAGES = ["precheck", "standby", "ready", "yield", "takeover", "retire", "commit"]


# -- recorder file ---------------------------------------------------------------------------


class RecordTail:
    """Reads the recorder's JSON-lines file incrementally (it grows by ~1 line per port per
    second for the whole run; re-reading it from the start for every restart would cost the
    2-core box more than the measurement itself)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def skip_to_end(self) -> None:
        """Forget what is already in the file (the next read starts from now)."""
        self.offset = self.path.stat().st_size

    def read(self) -> list[Frame]:
        """Frames in complete lines written since the last read."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        return parse_records(data[:end].decode(errors="replace").splitlines())


def port_gaps(frames: list[Frame], t0: float) -> dict[str, list[tuple[float, float]]]:
    """Per partner port: (arrival time relative to t0, inter-arrival since the previous PDU)
    for every LACPDU (subtype 1) but the first of the window."""
    by_port: dict[str, list[float]] = {}
    for f in frames:
        if f.subtype == 1:
            by_port.setdefault(f.iface, []).append(f.t)
    out = {}
    for port, ts in by_port.items():
        ts.sort()
        out[port] = [(b - t0, b - a) for a, b in zip(ts, ts[1:], strict=False)]
    return out


# -- one restart -----------------------------------------------------------------------------


@dataclass
class Restart:
    """One restart and what the partner saw around it (times in seconds)."""

    method: str  # hitless | cold
    run: int
    ok: bool = False
    error: str | None = None
    wall_s: float | None = None  # command (hitless) / SIGTERM -> new shim spawned (cold)
    result: str | None = None  # hitless: the Outcome's result
    code: int | None = None
    stages: dict[str, float] = field(default_factory=dict)
    sender_max_gap_s: float | None = None  # hitless: the controller's own send-side gap
    old: str | None = None
    new: str | None = None
    stop_s: float | None = None  # cold: SIGTERM until the old shim had exited
    cold_gap_s: float | None = None
    settle_s: float | None = None  # after the command until settled again
    window_s: list[float] = field(default_factory=list)  # relative to the command start
    ports: int = 0
    ports_silent: list[str] = field(default_factory=list)  # no PDU at all in the window
    max_gap_s: float | None = None
    median_gap_s: float | None = None
    over_budget: int = 0  # inter-arrivals > BUDGET_S
    over_flap_limit: int = 0  # inter-arrivals > FLAP_LIMIT_S
    per_port: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    points: list[list[float]] = field(default_factory=list)  # [t_rel, gap] for the plot
    counters: dict[str, int] = field(default_factory=dict)  # partner lacp/show-stats delta
    member_disabled: int = 0
    member_enabled: int = 0
    shims_after: list[str] = field(default_factory=list)


def wait_settled(lab: Lab, limit: float) -> float:
    """Block until every bond is negotiated with all members enabled on two polls in a row;
    returns the seconds waited. The double poll avoids catching OVS in the ~3 s during which
    a silent member still looks fine."""
    t0 = time.monotonic()
    good = 0
    while True:
        bad = not_negotiated(lab)
        good = good + 1 if not bad else 0
        if good >= 2:
            return time.monotonic() - t0
        if time.monotonic() - t0 > limit:
            raise BenchError(
                f"{len(bad)} bond(s) not negotiated with all members enabled "
                f"after {limit:.0f} s (e.g. {', '.join(bad[:5])})"
            )
        time.sleep(SETTLE_POLL_S)


def reap_children(lab: Lab) -> None:
    """Shims the lab spawned are our children: collect the ones that exited (retired by a
    handover or stopped cold) so they do not linger as zombies for the whole run. Only those
    pids: a blanket waitpid(-1) would steal subprocess.run's exit status."""
    for s in lab.state["shims"].values():
        try:
            os.waitpid(int(s["proc"]["pid"]), os.WNOHANG)
        except ChildProcessError:
            pass


def do_hitless(lab: Lab, r: Restart) -> None:
    """`warm-restart teamd` as an operator would run it; its JSON Outcome is kept."""
    argv = [str(WARM_RESTART), "--redis", lab.redis_url, "teamd", "--yes", "--json"]
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=HITLESS_TIMEOUT_S)
    r.wall_s = time.monotonic() - t0
    r.code = p.returncode
    try:
        out: dict[str, Any] = json.loads(p.stdout)
    except json.JSONDecodeError:
        raise BenchError(
            f"warm-restart exit {p.returncode}, no JSON on stdout: "
            f"{(p.stdout + p.stderr).strip()[-500:]}"
        ) from None
    r.result, r.stages = out.get("result"), dict(out.get("stages") or {})
    r.old, r.new = out.get("old"), out.get("new")
    gaps = [v.get("max_gap_s") for v in (out.get("lags") or {}).values()]
    gaps = [g for g in gaps if g is not None]
    r.sender_max_gap_s = max(gaps) if gaps else None
    if r.result != "completed":
        r.error = f"warm-restart {r.result} (exit {p.returncode}): {out.get('reason', '')}"


def do_cold(lab: Lab, r: Restart, cold_gap: float) -> None:
    """SIGTERM the running shim (a cold stop), wait for it to exit, wait `cold_gap`, start a
    new one: what a plain restart of the teamd container amounts to, at its fastest."""
    running = lab.registered_shims()
    if len(running) != 1:
        raise BenchError(
            f"expected one running shim before a cold restart, found {sorted(running) or 'none'}"
        )
    ((name, ref),) = running.items()
    r.old, r.cold_gap_s = name, cold_gap
    t0 = time.monotonic()
    ref.stop(STOP_TIMEOUT_S)  # SIGTERM; SIGKILL only if it has not exited in time
    r.stop_s = time.monotonic() - t0
    if cold_gap > 0:
        time.sleep(cold_gap)
    role = f"cold{r.run}"
    lab.start_shim(shim_command(lab), role=role)
    r.wall_s = time.monotonic() - t0
    r.new = role


def measure_restart(
    lab: Lab, tail: RecordTail, method: str, run: int, cold_gap: float, act: Any = None
) -> Restart:
    """Settled lab -> snapshot partner counters -> restart -> wait -> analyse the window.

    `act(lab, r)` replaces the built-in methods (bench/container_handover.py's container
    restarts)."""
    assert lab.ovs is not None
    r = Restart(method, run)
    wait_settled(lab, SETTLE_LIMIT_S)
    tail.skip_to_end()
    stats0 = lab.ovs.lacp_stats()
    log0 = lab.ovs.log_offset()
    time.sleep(PRE_S)  # the window opens when the tail was moved to the end
    w_start = -PRE_S - 0.05
    t0 = time.monotonic()
    try:
        if act is not None:
            act(lab, r)
        elif method == "hitless":
            do_hitless(lab, r)
        else:
            do_cold(lab, r, cold_gap)
    except (BenchError, subprocess.TimeoutExpired, OSError) as e:
        r.error = str(e)
    t_end = time.monotonic()
    time.sleep(max(0.0, t_end + MIN_AFTER_S - time.monotonic()))
    try:
        r.settle_s = wait_settled(lab, SETTLE_LIMIT_S) + MIN_AFTER_S
    except BenchError as e:
        r.error = (r.error + "; " if r.error else "") + f"not settled: {e}"
    t_close = time.monotonic()
    stats1 = lab.ovs.lacp_stats()
    events = lab.ovs.member_events(log0)
    reap_children(lab)
    r.shims_after = sorted(lab.registered_shims())

    r.counters = flap_counts(stats_delta(stats0, stats1))
    r.member_disabled = sum(1 for e in events if not e.enabled)
    r.member_enabled = sum(1 for e in events if e.enabled)
    r.window_s = [w_start, t_close - t0]
    frames = [f for f in tail.read() if t0 + w_start <= f.t <= t_close]
    per_port = port_gaps(frames, t0)
    ports = [m[2] for m in lab.members()]
    r.ports = len(ports)
    r.ports_silent = [p for p in ports if not per_port.get(p)]
    all_gaps: list[float] = []
    for p in ports:
        gs = [g for _, g in per_port.get(p, [])]
        all_gaps += gs
        r.per_port[p] = {
            "pdus": len(gs) + 1 if gs else 0,
            "max_gap_s": max(gs) if gs else None,
            "median_gap_s": statistics.median(gs) if gs else None,
        }
        r.points += [[round(t, 4), round(g, 4)] for t, g in per_port.get(p, [])]
    if all_gaps:
        r.max_gap_s = max(all_gaps)
        r.median_gap_s = statistics.median(all_gaps)
        r.over_budget = sum(1 for g in all_gaps if g > BUDGET_S)
        r.over_flap_limit = sum(1 for g in all_gaps if g > FLAP_LIMIT_S)
    if r.ports_silent and not r.error:
        r.error = f"{len(r.ports_silent)} port(s) received no PDU in the window"
    r.ok = r.error is None
    return r


# -- one size --------------------------------------------------------------------------------


@dataclass
class SizeResult:
    """One lab (one size) and all its restarts; `error` set means it was cut short."""

    lags: int
    members: int
    workdir: str
    lab_up_s: float | None = None
    negotiated_s: float | None = None
    restarts: list[Restart] = field(default_factory=list)
    error: str | None = None


def measure_size(lags: int, members: int, runs: int, cold_gap: float) -> SizeResult:
    """Bring one lab up (recorder on), negotiate, alternate the restarts, always lab down."""
    workdir = Path(f"/tmp/bench-ho-{lags}")
    res = SizeResult(lags, members, str(workdir))
    clear_leftover(workdir)
    lab = Lab(workdir, prefix=f"bh{lags}")
    try:
        progress(f"size {lags} LAGs x {members}: lab up in {workdir} (prefix {lab.prefix})")
        t0 = time.monotonic()
        lab.up(lags, members, recorder=True)
        res.lab_up_s = time.monotonic() - t0
        assert lab.state["recorder"] is not None
        tail = RecordTail(Path(lab.state["recorder"]["out"]))
        shim = lab.start_shim(shim_command(lab), role="active")
        t1 = time.monotonic()
        limit = NEGOTIATE_BASE_S + NEGOTIATE_PER_LAG_S * lags
        while not_negotiated(lab):
            if not shim.alive():
                raise BenchError(
                    f"teamd-shim exited before negotiation, see {workdir / 'shim-active.log'}"
                )
            if time.monotonic() - t1 > limit:
                raise BenchError(f"not negotiated after {limit:.0f} s")
            time.sleep(0.5)
        res.negotiated_s = time.monotonic() - t1
        progress(
            f"  lab up {res.lab_up_s:.1f} s, negotiated {res.negotiated_s:.1f} s after shim start"
        )
        for i in range(runs):
            for method in ("hitless", "cold"):
                r = measure_restart(lab, tail, method, i, cold_gap)
                res.restarts.append(r)
                progress(
                    f"  {method:7s} run {i + 1}/{runs}: wall {fmt(r.wall_s)} s, partner "
                    f"inter-arrival max {fmt(r.max_gap_s, '.3f')} / median "
                    f"{fmt(r.median_gap_s, '.3f')} s, expired "
                    f"{r.counters.get('link_expired', 0)}, defaulted "
                    f"{r.counters.get('link_defaulted', 0)}, member disabled/enabled "
                    f"{r.member_disabled}/{r.member_enabled}" + (f" [{r.error}]" if r.error else "")
                )
                if len(r.shims_after) != 1:
                    raise BenchError(
                        f"after {method} run {i + 1}: running shims "
                        f"{r.shims_after or 'none'} (expected exactly one)"
                    )
    except BenchError as e:
        res.error = str(e)
        progress(f"  FAILED: {e}")
    except Exception as e:  # lab/OVS/redis trouble: report it, go on with the next size
        res.error = f"{type(e).__name__}: {e}"
        progress(f"  FAILED: {res.error}")
    finally:
        lab_down(lab)
    return res


# -- report ----------------------------------------------------------------------------------


def fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f}"


def _med(xs: list[float | None]) -> float | None:
    ys = [x for x in xs if x is not None]
    return statistics.median(ys) if ys else None


def summary(res: SizeResult, method: str) -> dict[str, Any]:
    """Per size x method: all inter-arrivals of all runs pooled (median, max), the median
    command wall time, and the partner's flap signals summed over the runs."""
    rs = [r for r in res.restarts if r.method == method]
    gaps = [p[1] for r in rs for p in r.points]
    return {
        "runs": len(rs),
        "failed": sum(1 for r in rs if not r.ok),
        "median_gap_s": statistics.median(gaps) if gaps else None,
        "max_gap_s": max(gaps) if gaps else None,
        "worst_run_max_gaps_s": [r.max_gap_s for r in rs],
        "median_wall_s": _med([r.wall_s for r in rs]),
        "over_budget": sum(r.over_budget for r in rs),
        "member_disabled": sum(r.member_disabled for r in rs),
        "member_enabled": sum(r.member_enabled for r in rs),
        "link_expired": sum(r.counters.get("link_expired", 0) for r in rs),
        "link_defaulted": sum(r.counters.get("link_defaulted", 0) for r in rs),
    }


def table(results: list[SizeResult], cold_gap: float) -> str:
    head = (
        "| LAGs x members | method | runs (failed) | median inter-arrival s "
        "| max inter-arrival s | gaps > 1.1 s | median wall s | flaps (member disabled) "
        "| member enabled lines | link expired | link defaulted |"
    )
    lines = [head, "|" + "---|" * 11]
    for res in results:
        for method in ("hitless", "cold"):
            s = summary(res, method)
            label = method if method == "hitless" else f"cold (gap {cold_gap:g} s)"
            lines.append(
                f"| {res.lags} x {res.members} | {label} | {s['runs']} ({s['failed']}) "
                f"| {fmt(s['median_gap_s'], '.3f')} | {fmt(s['max_gap_s'], '.3f')} "
                f"| {s['over_budget']} | {fmt(s['median_wall_s'])} | {s['member_disabled']} "
                f"| {s['member_enabled']} | {s['link_expired']} | {s['link_defaulted']} |"
            )
        if res.error:
            lines.append(
                f"| {res.lags} x {res.members} | (cut short) | "
                f"{res.error.splitlines()[0]} |" + " |" * 8
            )
    return "\n".join(lines)


def stage_table(results: list[SizeResult]) -> str:
    lines = [
        "| LAGs x members | " + " | ".join(f"{s} ms" for s in STAGES) + " | total wall ms |",
        "|" + "---|" * (len(STAGES) + 2),
    ]
    for res in results:
        rs = [r for r in res.restarts if r.method == "hitless" and r.stages]
        if not rs:
            continue
        cells = [ms(_med([r.stages.get(s) for r in rs])) for s in STAGES]
        lines.append(
            f"| {res.lags} x {res.members} | "
            + " | ".join(cells)
            + f" | {ms(_med([r.wall_s for r in rs]))} |"
        )
    return "\n".join(lines)


def plot(results: list[SizeResult], path: Path, cold_gap: float) -> bool:
    """Inter-arrival at the partner vs time around the restart, hitless and cold side by side,
    at the largest size measured; every run overlaid (one colour each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in results if any(x.points for x in r.restarts)]
    if not done:
        return False
    res = max(done, key=lambda r: r.lags)
    top = max([p[1] for r in res.restarts for p in r.points] + [FLAP_LIMIT_S]) * 1.08
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), sharey=True)
    cmap = plt.get_cmap("tab10")
    for ax, method in zip(axes, ("hitless", "cold"), strict=True):
        rs = [r for r in res.restarts if r.method == method]
        for r in rs:
            if r.points:
                xs, ys = zip(*r.points, strict=True)
                ax.scatter(
                    xs,
                    ys,
                    s=7,
                    alpha=0.55,
                    color=cmap(r.run % 10),
                    label=f"run {r.run + 1} (max {fmt(r.max_gap_s, '.3f')} s)",
                )
        for y, style, text, va in (
            (NOMINAL_S, ":", "1.0 s nominal", "top"),
            (BUDGET_S, "--", "1.1 s budget", "bottom"),
            (FLAP_LIMIT_S, "-", "3.0 s flap limit", "bottom"),
        ):
            color = "dimgrey" if y < FLAP_LIMIT_S else "red"
            ax.axhline(y, color=color, linestyle=style, linewidth=1)
            ax.text(
                0.01, y, text, va=va, fontsize=8, color=color, transform=ax.get_yaxis_transform()
            )
        ax.axvline(0, color="black", linewidth=0.8)
        wall = _med([r.wall_s for r in rs])
        if wall is not None:
            ax.axvline(wall, color="purple", linewidth=0.8, linestyle="-.")
            ax.text(
                wall,
                0.02,
                f" command returned\n (median {wall:.2f} s)",
                fontsize=7,
                color="purple",
                transform=ax.get_xaxis_transform(),
            )
        title = (
            "hitless: warm-restart teamd"
            if method == "hitless"
            else f"cold: SIGTERM + start (gap {cold_gap:g} s)"
        )
        flaps = sum(r.member_disabled for r in rs)
        ax.set_title(f"{title}\n{len(rs)} runs, {flaps} member-disabled log lines", fontsize=10)
        ax.set_xlabel("seconds since the restart command started")
        ax.set_ylim(0, top)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    axes[0].set_ylabel("PDU inter-arrival at the partner, s")
    fig.suptitle(
        f"teamd-shim restart, {res.lags} LAGs x {res.members} members "
        f"({res.lags * res.members} partner ports), OVS partner in LACP fast mode",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--sizes",
        default="1,8,32,64",
        help="comma-separated LAG counts, one lab each, in order (default %(default)s)",
    )
    p.add_argument(
        "--runs", type=int, default=5, help="restarts per method per size (default %(default)s)"
    )
    p.add_argument(
        "--cold-gap",
        type=float,
        default=0.0,
        help="seconds between the old shim's exit and the new one's start in the "
        "cold restart (default %(default)s: the best case)",
    )
    p.add_argument("--members", type=int, default=2, help="members per LAG (default 2)")
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench/out/handover.json",
        help="JSON with the raw numbers (default %(default)s)",
    )
    p.add_argument(
        "--png",
        type=Path,
        default=REPO / "bench/out/handover.png",
        help="plot (default %(default)s)",
    )
    a = p.parse_args(argv)
    try:
        a.sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    except ValueError:
        p.error("--sizes must be comma-separated integers")
    if not a.sizes or min(a.sizes) < 1 or a.members < 1 or a.runs < 1 or a.cold_gap < 0:
        p.error("sizes, members and runs must be >= 1 and --cold-gap >= 0")
    return a


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """As in steady_state: unwind the main process (every `finally` takes its lab down), but
    make a forked pyroute2 helper copy of this process die at once instead of unwinding our
    stack and taking the lab down under the main process's feet."""
    if os.getpid() != MAIN_PID:
        os._exit(128 + signum)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("handover: needs root (network namespaces, Open vSwitch)", file=sys.stderr)
        return 2
    if not WARM_RESTART.exists():
        print(f"handover: {WARM_RESTART} not found: run `make setup`", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    info = machine_info()
    progress(
        f"teamd restart, hitless vs cold: sizes {args.sizes} x {args.members} members, "
        f"{args.runs} runs each, cold gap {args.cold_gap:g} s; {info['nproc']} cores, "
        f"load {info['loadavg_at_start'][0]:.2f}"
    )
    results: list[SizeResult] = []
    interrupted = False
    try:
        for n in args.sizes:
            results.append(measure_size(n, args.members, args.runs, args.cold_gap))
    except KeyboardInterrupt:
        interrupted = True
        progress("interrupted: labs taken down, reporting what was measured")

    doc = {
        "machine": info,
        "options": {
            "sizes": args.sizes,
            "members": args.members,
            "runs": args.runs,
            "cold_gap_s": args.cold_gap,
        },
        "constants": {
            "pre_s": PRE_S,
            "min_after_s": MIN_AFTER_S,
            "nominal_s": NOMINAL_S,
            "budget_s": BUDGET_S,
            "flap_limit_s": FLAP_LIMIT_S,
        },
        "interrupted": interrupted,
        "summary": {
            f"{r.lags}x{r.members}": {m: summary(r, m) for m in ("hitless", "cold")}
            for r in results
        },
        "results": [asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    plotted = plot(results, args.png, args.cold_gap)

    print(table(results, args.cold_gap))
    print()
    print("Median stage durations of the hitless runs (from `warm-restart --json`):")
    print()
    print(stage_table(results))
    print(
        f"\nInter-arrival: every LACPDU the partner received from us in the window "
        f"[-{PRE_S:g} s, settled again >= {MIN_AFTER_S:g} s after the restart], all ports and "
        f"runs pooled. Flaps: `member X: disabled` lines in the OVS log. Raw numbers: "
        f"{args.out}" + (f"; plot: {args.png}" if plotted else "")
    )
    if interrupted:
        return 130
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
