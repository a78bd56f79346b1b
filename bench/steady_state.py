#!/usr/bin/env python3
"""Steady-state cost of teamd-shim: CPU % of one core and RSS at 1..128 LAGs.

Why: the shim replaces teamd on a switch whose control-plane CPU is small and shared, so
what it costs while *nothing happens* (every LAG negotiated, LACP fast mode: one PDU per
second per member in each direction) is the price paid all the time. The target is < 5 % of
one core and < 80 MB RSS at 128 LAGs x 2 members.

For each size, one lab (DUT namespace, Open vSwitch partner, redis) is brought up, the shim is
started, and once every bond is negotiated with all members enabled (plus a settle time) the
shim's /proc counters are sampled over a window. Open vSwitch's own CPU in that window is
reported for context: on a small box the partner competes with the shim for the same cores.
The partner's `lacp/show-stats` before/after the window proves the measured state really was
steady (no expired/defaulted partner, i.e. no flap). A second window measures the price of a
hot standby (`warm-restart supervise`, hld §14) beside the active: the standby's CPU and RSS,
the active's CPU again, and the Redis traffic of both (`--no-hot-standby` skips it). A
benchmark, not a test: it exits 0
whether the targets are met or not, and non-zero only if it could not measure.

Run as root: `make bench`, or `.venv/bin/python bench/steady_state.py --sizes 1,16 --window 10`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

from teamd_lab.lab import Lab, LabError, LabNotFoundError
from teamd_lab.ovs_text import stats_delta
from teamd_lab.shim import shim_command

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAIN_PID = os.getpid()  # forked copies (pyroute2 helpers) must not act as us; see _on_signal
TARGET_LAGS, TARGET_MEMBERS = 128, 2
TARGET_CPU_PCT = 5.0
TARGET_RSS_MB = 80.0
SETTLE_S = 5.0
SETTLE_PER_LAG_S = 0.05  # at 512 x 2 Open vSwitch still ran at 125 % CPU 5 s after the last
# bond negotiated, and flapped members in the window (issue 19): the settle grows with the size


def settle_s(lags: int) -> float:
    return max(SETTLE_S, SETTLE_PER_LAG_S * lags)


SAMPLE_EVERY_S = 1.0
# Negotiation limit: fast LACP converges in ~3 s, but with many LAGs the shim and OVS need time
# to open every port and the first bond/show polls are slow; so a base plus a per-LAG share.
NEGOTIATE_BASE_S = 30.0
NEGOTIATE_PER_LAG_S = 0.5


class BenchError(RuntimeError):
    """This size could not be measured (the message says why)."""


def progress(msg: str) -> None:
    """Progress goes to stderr so stdout carries only the final table."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- /proc sampling --------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcSample:
    """One reading of a process: monotonic time, cpu ticks (all threads) and RSS in kB."""

    t: float
    ticks: int
    child_ticks: int
    rss_kb: int


def read_proc(pid: int) -> ProcSample:
    """utime+stime (fields 14, 15) of /proc/<pid>/stat cover every thread of the process;
    cutime+cstime (16, 17) are kept apart: the shim spawns no children, so they should stay 0."""
    t = time.monotonic()
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    rest = data[data.rfind(b")") + 2 :].split()  # comm may contain spaces: split after ')'
    ticks = int(rest[11]) + int(rest[12])
    child = int(rest[13]) + int(rest[14])
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
                break
    return ProcSample(t, ticks, child, rss)


def cpu_pct(a: ProcSample, b: ProcSample) -> float:
    """CPU % of one core between two samples: delta ticks / CLK_TCK / wall seconds * 100."""
    wall = b.t - a.t
    return (b.ticks - a.ticks) / CLK_TCK / wall * 100.0 if wall > 0 else 0.0


def summarize(samples: list[ProcSample]) -> dict:
    """Whole-window CPU % (first to last sample) plus per-interval spread and RSS stats."""
    first, last = samples[0], samples[-1]
    per = [cpu_pct(a, b) for a, b in zip(samples, samples[1:], strict=False)]
    rss = [s.rss_kb / 1024.0 for s in samples]
    return {
        "cpu_pct": cpu_pct(first, last),
        "cpu_ticks": last.ticks - first.ticks,
        "child_cpu_ticks": last.child_ticks - first.child_ticks,
        "wall_s": last.t - first.t,
        "cpu_pct_per_interval_min": min(per) if per else None,
        "cpu_pct_per_interval_max": max(per) if per else None,
        "rss_mb_mean": sum(rss) / len(rss),
        "rss_mb_max": max(rss),
        "rss_mb_first": rss[0],
        "rss_mb_last": rss[-1],
        "samples": len(samples),
    }


# -- lab helpers -----------------------------------------------------------------------------


def not_negotiated(lab: Lab) -> list[str]:
    """Bonds that are not negotiated with every member enabled (missing bonds included)."""
    assert lab.ovs is not None
    bonds = lab.ovs.bond_show()
    bad = []
    for lag in lab.lags():
        bond = lab.state["lags"][lag]["bond"]
        b = bonds.get(bond)
        if (
            b is None
            or b.get("lacp_status") != "negotiated"
            or not b["members"]
            or not all(b["members"].values())
        ):
            bad.append(bond if b is not None else f"{bond}(missing)")
    return bad


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while a lab is taken down: a second Ctrl-C must not leave litter.

    A signal that arrives meanwhile is delivered when the block ends, so it is not lost.
    """
    sigs = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def lab_down(lab: Lab) -> None:
    """Take the lab down, once, with signals held; report (not raise) an incomplete teardown."""
    if os.getpid() != MAIN_PID or lab.state.get("phase") in ("down", "new"):
        return  # never from a forked copy of this process (see _on_signal)
    with signals_blocked():
        progress(f"lab down ({lab.prefix})")
        try:
            lab.down()
        except LabError as e:
            progress(f"WARNING: {e} (see {lab.workdir / 'lab.json'})")


def clear_leftover(workdir: Path) -> None:
    """A run killed hard leaves its lab behind in our own work dir; take that one down first."""
    try:
        old = Lab.load(workdir)
    except LabNotFoundError:
        return
    if old.state.get("phase") != "down":
        progress(f"removing the lab left by an earlier run in {workdir}")
        with signals_blocked():
            old.down()


def shim_log_tail(lab: Lab, lines: int = 15) -> str:
    s = lab.state["shims"].get("active")
    if not s:
        return ""
    try:
        return "\n".join(Path(s["log"]).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def flap_counts(delta: dict[str, dict[str, dict[str, int]]]) -> dict[str, int]:
    """Sum the partner's per-member counter deltas over all bonds."""
    out: dict[str, int] = {}
    for members in delta.values():
        for counters in members.values():
            for k, v in counters.items():
                out[k] = out.get(k, 0) + v
    return out


# -- one size --------------------------------------------------------------------------------


@dataclass
class Result:
    """Everything measured for one size; `error` set means it could not be measured."""

    lags: int
    members: int
    workdir: str
    lab_up_s: float | None = None
    negotiated_s: float | None = None
    shim: dict = field(default_factory=dict)
    ovs_vswitchd: dict = field(default_factory=dict)
    partner_counters: dict[str, int] = field(default_factory=dict)
    partner_flaps: int | None = None
    member_disabled_events: int | None = None
    still_negotiated_after: bool | None = None
    loadavg_before: list[float] = field(default_factory=list)
    loadavg_after: list[float] = field(default_factory=list)
    # the price of a hot standby (hld §14), measured in a second window beside the active
    hot: dict = field(default_factory=dict)
    error: str | None = None


def sample_window(
    pids: dict[str, int], window: float, alive: Callable[[], bool]
) -> dict[str, list[ProcSample]]:
    """Read every pid's /proc once per SAMPLE_EVERY_S for `window` seconds (nothing else
    touches the lab meanwhile: polling OVS would itself cost the partner CPU)."""
    samples: dict[str, list[ProcSample]] = {k: [] for k in pids}
    offsets = [i * SAMPLE_EVERY_S for i in range(int(window / SAMPLE_EVERY_S) + 1)]
    if offsets[-1] < window:
        offsets.append(window)
    start = time.monotonic()
    for off in offsets:
        time.sleep(max(0.0, start + off - time.monotonic()))
        if not alive():
            raise BenchError("teamd-shim exited during the measurement window")
        for k, pid in pids.items():
            samples[k].append(read_proc(pid))
    return samples


def redis_counters(lab: Lab) -> tuple[int, int]:
    """(commands processed, bytes received) by the lab's redis-server so far."""
    info = lab.redis(6).info("stats")
    return int(info["total_commands_processed"]), int(info["total_net_input_bytes"])


def measure_hot_standby(
    lab: Lab, active_pid: int, ovs_pid: int, lags: int, window: float, alive: Callable[[], bool]
) -> dict:
    """A hot standby beside the active (what `warm-restart supervise` keeps): its own CPU and
    RSS, the active's again (it now publishes its state every 0.5 s and heartbeats every
    0.1 s), and the Redis traffic of the two, the price every supervised switch pays."""
    ref = lab.start_shim(
        shim_command(lab, name="teamd~hot", extra=["--role", "standby", "--hot"]), role="hot"
    )
    limit = NEGOTIATE_BASE_S + NEGOTIATE_PER_LAG_S * lags
    t0 = time.monotonic()
    while lab.redis(6).hget("TEAMD_SHIM_INSTANCE|teamd~hot", "ready") != "true":
        if not ref.alive() or time.monotonic() - t0 > limit:
            raise BenchError(f"hot standby not READY after {time.monotonic() - t0:.0f} s")
        time.sleep(0.2)
    time.sleep(SETTLE_S)
    progress(
        f"  hot standby READY in {time.monotonic() - t0 - SETTLE_S:.1f} s; measuring "
        f"both for {window:.0f} s"
    )
    c0 = redis_counters(lab)
    samples = sample_window(
        {"active": active_pid, "standby": ref.pid, "ovs": ovs_pid},
        window,
        lambda: alive() and ref.alive(),
    )
    c1 = redis_counters(lab)
    out = {k: summarize(v) for k, v in samples.items()}
    wall = out["active"]["wall_s"]
    out["redis_commands_per_s"] = round((c1[0] - c0[0]) / wall, 1)
    out["redis_in_kb_per_s"] = round((c1[1] - c0[1]) / wall / 1024, 1)
    progress(
        f"  with a hot standby: active {out['active']['cpu_pct']:.2f} % CPU, standby "
        f"{out['standby']['cpu_pct']:.2f} % CPU / {out['standby']['rss_mb_max']:.1f} MB "
        f"RSS; redis {out['redis_commands_per_s']} commands/s, "
        f"{out['redis_in_kb_per_s']} KB/s in"
    )
    return out


def measure(lags: int, members: int, window: float, hot: bool = True) -> Result:
    """Bring one lab up, negotiate, measure, and always take it down."""
    workdir = Path(f"/tmp/bench-ss-{lags}")
    res = Result(lags, members, str(workdir))
    clear_leftover(workdir)
    lab = Lab(workdir, prefix=f"bs{lags}")
    try:
        progress(f"size {lags} LAGs x {members}: lab up in {workdir} (prefix {lab.prefix})")
        t0 = time.monotonic()
        lab.up(lags, members)  # the shim is started apart, so lab-up time excludes it
        res.lab_up_s = time.monotonic() - t0
        progress(f"  lab up in {res.lab_up_s:.1f} s; starting teamd-shim")
        assert lab.ovs is not None
        shim = lab.start_shim(shim_command(lab), role="active")
        vswitchd = lab.ovs.procs["ovs-vswitchd"]

        limit = NEGOTIATE_BASE_S + NEGOTIATE_PER_LAG_S * lags
        t1 = time.monotonic()
        while True:
            if not shim.alive():
                raise BenchError(
                    f"teamd-shim exited before negotiation; log tail:\n{shim_log_tail(lab)}"
                )
            bad = not_negotiated(lab)
            if not bad:
                break
            if time.monotonic() - t1 > limit:
                raise BenchError(
                    f"{len(bad)}/{lags} bonds not negotiated with all members enabled after "
                    f"{limit:.0f} s (e.g. {', '.join(bad[:5])}); OVS log "
                    f"{lab.ovs.log_path}, shim log tail:\n{shim_log_tail(lab)}"
                )
            time.sleep(0.2 if lags <= 16 else 0.5)
        res.negotiated_s = time.monotonic() - t1
        progress(
            f"  all {lags} bonds negotiated, {lags * members} members enabled, "
            f"{res.negotiated_s:.1f} s after shim start; settling {settle_s(lags):.0f} s"
        )
        # the partner's counters before the settle, not just before the window: a whole-bridge
        # appctl at 512 bonds stalls ovs-vswitchd's main loop for seconds, long enough for
        # its own LACP timers to expire members (1613 flaps in one window measured that way)
        stats0 = lab.ovs.lacp_stats()
        t_stats0 = time.monotonic()
        log0 = lab.ovs.log_offset()
        time.sleep(settle_s(lags))

        res.loadavg_before = list(os.getloadavg())
        progress(
            f"  measuring for {window:.0f} s (shim pid {shim.pid}, ovs-vswitchd pid "
            f"{vswitchd.pid}, load {res.loadavg_before[0]:.2f})"
        )
        samples = sample_window({"shim": shim.pid, "ovs": vswitchd.pid}, window, shim.alive)
        res.loadavg_after = list(os.getloadavg())
        stats1 = lab.ovs.lacp_stats()
        stats_s = time.monotonic() - t_stats0  # settle + window + the two queries
        res.partner_counters = flap_counts(stats_delta(stats0, stats1))
        res.partner_flaps = res.partner_counters.get("link_expired", 0) + res.partner_counters.get(
            "link_defaulted", 0
        )
        res.member_disabled_events = sum(1 for e in lab.ovs.member_events(log0) if not e.enabled)
        res.still_negotiated_after = not not_negotiated(lab)
        res.shim = summarize(samples["shim"])
        res.ovs_vswitchd = summarize(samples["ovs"])
        rx = res.partner_counters.get("rx_pdus", 0) / max(stats_s, 1e-9)
        progress(
            f"  shim {res.shim['cpu_pct']:.2f} % CPU, {res.shim['rss_mb_max']:.1f} MB RSS;"
            f" ovs-vswitchd {res.ovs_vswitchd['cpu_pct']:.2f} % CPU; partner flaps "
            f"{res.partner_flaps} (settle and window); OVS received {rx:.1f} PDU/s "
            f"(fast mode expects ~{lags * members})"
        )
        if hot:
            res.hot = measure_hot_standby(lab, shim.pid, vswitchd.pid, lags, window, shim.alive)
    except BenchError as e:
        res.error = str(e)
        progress(f"  FAILED: {e}")
    except Exception as e:  # lab/OVS/redis trouble: this size is unmeasured, go on with the next
        res.error = f"{type(e).__name__}: {e}"
        progress(f"  FAILED: {res.error}")
    finally:
        lab_down(lab)
    return res


# -- report ----------------------------------------------------------------------------------


def machine_info() -> dict:
    """What a reader needs to compare runs: cores, kernel, Python, OVS, time, load."""

    def first_line(argv: list[str]) -> str:
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return r.stdout.splitlines()[0] if r.stdout else ""
        except (OSError, subprocess.TimeoutExpired):
            return ""

    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ovs": first_line(["ovs-vswitchd", "--version"]),
        "git_commit": first_line(["git", "-C", str(REPO), "rev-parse", "HEAD"]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "clk_tck": CLK_TCK,
        "loadavg_at_start": list(os.getloadavg()),
    }


def fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def table(results: list[Result]) -> str:
    head = (
        "| LAGs | members | CPU % of one core | RSS MB | ovs-vswitchd CPU % | lab up s "
        "| negotiated in s | partner flaps during window |"
    )
    lines = [head, "|" + "---|" * 8]
    for r in results:
        if r.error:
            flaps = "not measured: " + r.error.splitlines()[0]
        else:
            flaps = str(r.partner_flaps)
            if r.member_disabled_events:
                flaps += f" ({r.member_disabled_events} member-disabled log lines)"
            if not r.still_negotiated_after:
                flaps += " (not all negotiated after the window)"
        lines.append(
            f"| {r.lags} | {r.members} | {fmt(r.shim.get('cpu_pct'))} "
            f"| {fmt(r.shim.get('rss_mb_max'), '.1f')} "
            f"| {fmt(r.ovs_vswitchd.get('cpu_pct'))} | {fmt(r.lab_up_s, '.1f')} "
            f"| {fmt(r.negotiated_s, '.1f')} | {flaps} |"
        )
    return "\n".join(lines)


def hot_table(results: list[Result]) -> str:
    """The active alone vs with a hot standby beside it, and what Redis carries for them."""
    lines = [
        "| LAGs | active alone CPU % | with hot standby: active CPU % | standby CPU % "
        "| standby RSS MB | redis commands/s | redis KB/s in |",
        "|" + "---|" * 7,
    ]
    for r in results:
        h = r.hot
        if not h:
            continue
        lines.append(
            f"| {r.lags} | {fmt(r.shim.get('cpu_pct'))} "
            f"| {fmt(h['active']['cpu_pct'])} | {fmt(h['standby']['cpu_pct'])} "
            f"| {fmt(h['standby']['rss_mb_max'], '.1f')} "
            f"| {h['redis_commands_per_s']} | {h['redis_in_kb_per_s']} |"
        )
    return "\n".join(lines)


def verdicts(results: list[Result]) -> list[str]:
    """PASS/MISS against the 128x2 target; RSS is judged by its maximum over the window."""
    r = next(
        (
            x
            for x in results
            if x.lags == TARGET_LAGS and x.members == TARGET_MEMBERS and not x.error
        ),
        None,
    )
    if r is None:
        return [f"target at {TARGET_LAGS}x{TARGET_MEMBERS}: not measured in this run"]
    cpu, rss = r.shim["cpu_pct"], r.shim["rss_mb_max"]
    return [
        f"{'PASS' if cpu < TARGET_CPU_PCT else 'MISS'}: CPU at {TARGET_LAGS}x{TARGET_MEMBERS} "
        f"{cpu:.2f} % of one core (target < {TARGET_CPU_PCT:g} %)",
        f"{'PASS' if rss < TARGET_RSS_MB else 'MISS'}: RSS at {TARGET_LAGS}x{TARGET_MEMBERS} "
        f"{rss:.1f} MB (target < {TARGET_RSS_MB:g} MB)",
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--sizes",
        default="1,16,64,128",
        help="comma-separated LAG counts, one lab each, in order (default %(default)s)",
    )
    p.add_argument(
        "--window",
        type=float,
        default=30.0,
        help="measurement window in seconds (default %(default)s)",
    )
    p.add_argument("--members", type=int, default=2, help="members per LAG (default 2)")
    p.add_argument(
        "--no-hot-standby",
        dest="hot",
        action="store_false",
        help="skip the second window with a hot standby beside the active",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench/out/steady_state.json",
        help="JSON with the raw numbers (default %(default)s)",
    )
    p.add_argument(
        "--png",
        type=Path,
        default=REPO / "bench/out/steady_state.png",
        help="cost vs LAG count plot (default %(default)s)",
    )
    a = p.parse_args(argv)
    try:
        a.sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    except ValueError:
        p.error("--sizes must be comma-separated integers")
    if not a.sizes or min(a.sizes) < 1 or a.members < 1 or a.window < 2:
        p.error("sizes and members must be >= 1 and the window >= 2 s")
    return a


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGINT both unwind the main process, so every `finally` (lab down) runs.

    pyroute2 forks short-lived helpers (netns create, IPRoute(netns=...)) that copy this
    process, handlers and stack included, and stops them with SIGTERM; Ctrl-C reaches them too
    (same process group). Such a copy must die at once: unwinding it would run *our* finally
    blocks and take the lab down under the main process's feet (seen: redis stopped and the
    namespaces deleted half-way through lab up).
    """
    if os.getpid() != MAIN_PID:
        os._exit(128 + signum)
    raise KeyboardInterrupt


def plot(results: list[Result], path: Path) -> bool:
    """Cost vs LAG count, a line per metric, so growth is visible at a glance: CPU % of one
    core (active alone, active and hot standby beside each other, the partner) on the left,
    RSS on the right, both against log2 of the LAG count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in results if r.shim and not r.error]
    if not done:
        return False
    xs = [r.lags for r in done]

    def series(get: Callable[[Result], float | None]) -> tuple[list[int], list[float]]:
        pts = [(r.lags, v) for r in done if (v := get(r)) is not None]
        return [x for x, _ in pts], [y for _, y in pts]

    cpu = [
        ("active alone", lambda r: r.shim.get("cpu_pct")),
        ("active, hot standby beside", lambda r: (r.hot or {}).get("active", {}).get("cpu_pct")),
        ("hot standby", lambda r: (r.hot or {}).get("standby", {}).get("cpu_pct")),
        ("ovs-vswitchd (partner)", lambda r: r.ovs_vswitchd.get("cpu_pct")),
    ]
    rss = [
        ("active RSS", lambda r: r.shim.get("rss_mb_max")),
        ("hot standby RSS", lambda r: (r.hot or {}).get("standby", {}).get("rss_mb_max")),
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, lines, unit in ((left, cpu, "CPU % of one core"), (right, rss, "RSS, MB")):
        for label, get in lines:
            x, y = series(get)
            if x:
                ax.plot(x, y, marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel(f"LAGs x {done[0].members} members")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    left.axhline(TARGET_CPU_PCT, color="dimgrey", linestyle="--", linewidth=1)
    fig.suptitle("teamd-shim steady state vs LAG count (LACP fast, OVS partner)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("steady_state: needs root (network namespaces, Open vSwitch)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    info = machine_info()
    progress(
        f"teamd-shim steady state: sizes {args.sizes} x {args.members} members, window "
        f"{args.window:g} s; {info['nproc']} cores, load {info['loadavg_at_start'][0]:.2f}"
    )
    results: list[Result] = []
    interrupted = False
    try:
        for n in args.sizes:
            results.append(measure(n, args.members, args.window, args.hot))
    except KeyboardInterrupt:
        interrupted = True
        progress("interrupted: labs taken down, reporting what was measured")

    doc = {
        "machine": info,
        "window_s": args.window,
        "settle_s": {"base": SETTLE_S, "per_lag": SETTLE_PER_LAG_S},
        "targets": {
            "lags": TARGET_LAGS,
            "members": TARGET_MEMBERS,
            "cpu_pct_of_one_core": TARGET_CPU_PCT,
            "rss_mb": TARGET_RSS_MB,
        },
        "interrupted": interrupted,
        "results": [asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    plotted = plot(results, args.png)

    print(table(results))
    print()
    if any(r.hot for r in results):
        print("The price of a hot standby (`warm-restart supervise`), a second window:")
        print()
        print(hot_table(results))
        print()
    for v in verdicts(results):
        print(v)
    print(
        f"\nRSS is the maximum VmRSS over the window (MB = MiB); CPU % is utime+stime of all "
        f"threads over the window. Raw numbers: {args.out}"
        + (f"; plot: {args.png}" if plotted else "")
    )
    if interrupted:
        return 130
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
