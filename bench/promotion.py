#!/usr/bin/env python3
"""Promotion of the hot standby on the active's death, as the partner sees it, at 1..64 LAGs x 2;
and a planned `warm-restart teamd` with and without a hot standby, side by side.

Why: `warm-restart supervise` claims that even a SIGKILL of the active is invisible to the
partner (hld §14). The partner (Open vSwitch, LACP fast) is the judge: its recorder stamps our
PDUs in the kernel, so per port we get

* promotion latency: the active's death (just before the SIGKILL, same CLOCK_MONOTONIC as the
  recorder) to the first PDU that reached the partner afterwards. By design that is *not*
  "as soon as possible": the new owner sends one period after the dead one's last PDU on that
  port (hld §14.2), so it lies anywhere in 0..1 s; what matters is the next number;
* the inter-arrival that spans the death (the partner's silence on that port): budget 1.2 s,
  flap limit 3.0 s; plus the standby's own time from the death notice to owning (`promoted
  _took_ms` in its instance record) and the partner's flap lines and counters.

The planned restarts alternate: `warm-restart teamd` with the supervisor's READY hot standby
(reused: the ready stage drops out), then with no hot standby (supervisor stopped, standby
killed: the command starts one and waits for READY), so the two walls are measured in one run
on the same lab. A benchmark, not a test: it exits 0 whatever it measured, non-zero only if a
size could not be measured.

Run as root: `.venv/bin/python bench/promotion.py` (options `--sizes 1,8,64 --kills 3 --runs 3`).
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from handover import RecordTail, wait_settled
from steady_state import (
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
from teamd_lab.procs import ProcRef
from teamd_lab.shim import shim_command
from teamd_shim.db.ownership import instance_alive
from teamd_shim.db.redis_decoded import hgetall, keys
from teamd_shim.io.identity import proc_starttime

REPO = Path(__file__).resolve().parents[1]
WARM_RESTART = Path(sys.executable).parent / "warm-restart"
KILL_BUDGET_S, FLAP_LIMIT_S = 1.2, 3.0
SETTLE_LIMIT_S = 60.0
AFTER_KILL_S = 3.5  # watch the partner this long after a kill (> the 3 s flap limit)


@dataclass
class Kill:
    run: int
    latency_s: dict[str, float] = field(default_factory=dict)  # death -> first PDU, per port
    gap_s: dict[str, float] = field(default_factory=dict)  # the silence across the death
    took_ms: float | None = None  # the standby's own death notice -> owner
    member_disabled: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    points: list[list[float]] = field(default_factory=list)  # [t since death, gap]
    error: str | None = None


@dataclass
class Planned:
    hot: bool
    wall_s: float | None = None
    ready_s: float | None = None
    result: str | None = None
    error: str | None = None


@dataclass
class SizeResult:
    lags: int
    members: int
    kills: list[Kill] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)
    error: str | None = None


def live(lab: Lab) -> dict[str, dict[str, str]]:
    r = lab.redis(6)
    out = {}
    for key in keys(r, "TEAMD_SHIM_INSTANCE|*"):
        rec = hgetall(r, key)
        if instance_alive(rec) and rec.get("role"):
            out[key.split("|", 1)[1]] = rec
    return out


def pair(lab: Lab) -> tuple[str, int, str, int] | None:
    """(active, pid, READY hot standby, pid) when exactly those two run."""
    inst = live(lab)
    act = [n for n, r in inst.items() if r["role"] == "active"]
    sb = [
        n
        for n, r in inst.items()
        if r["role"] == "standby" and r.get("hot") == "true" and r.get("ready") == "true"
    ]
    if len(inst) != 2 or len(act) != 1 or len(sb) != 1:
        return None
    return act[0], int(inst[act[0]]["pid"]), sb[0], int(inst[sb[0]]["pid"])


def wait_pair(lab: Lab, limit: float) -> tuple[str, int, str, int]:
    deadline = time.monotonic() + limit
    while (p := pair(lab)) is None:
        if time.monotonic() > deadline:
            raise BenchError(
                f"no active + READY hot standby after {limit:.0f} s: "
                f"{ {n: r.get('role') for n, r in live(lab).items()} }"
            )
        time.sleep(0.1)
    return p


def start_supervisor(lab: Lab) -> ProcRef:
    return lab._spawn(
        lab.dut_ns,
        [str(WARM_RESTART), "--redis", lab.redis_url, "supervise"],
        lab.workdir / "supervisor.log",
        "supervisor",
    )


def gone(pid: int, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while proc_starttime(pid) is not None:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"pid {pid} still alive after {limit:.0f} s")
        time.sleep(0.01)


def measure_kill(lab: Lab, tail: RecordTail, run: int, ready_limit: float) -> Kill:
    assert lab.ovs is not None
    k = Kill(run)
    active, pid, standby, _ = wait_pair(lab, ready_limit)
    wait_settled(lab, SETTLE_LIMIT_S)
    tail.skip_to_end()
    stats0, log0 = lab.ovs.lacp_stats(), lab.ovs.log_offset()
    time.sleep(1.5 + (time.monotonic() % 1.0))  # land the kill anywhere in the period
    t_death = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    gone(pid)
    time.sleep(AFTER_KILL_S)
    frames = [f for f in tail.read() if f.subtype == 1]
    k.counters = flap_counts(stats_delta(stats0, lab.ovs.lacp_stats()))
    k.member_disabled = sum(1 for e in lab.ovs.member_events(log0) if not e.enabled)
    rec = hgetall(lab.redis(6), f"TEAMD_SHIM_INSTANCE|{standby}")
    if rec.get("promoted_from") != active:
        k.error = f"{standby} did not promote itself (record: {rec.get('promotion_refused')})"
        return k
    k.took_ms = float(rec.get("promoted_took_ms") or "nan")
    by_port: dict[str, list[float]] = {}
    for f in frames:
        by_port.setdefault(f.iface, []).append(f.t)
    for port in [m[2] for m in lab.members()]:
        ts = sorted(by_port.get(port, []))
        before = [t for t in ts if t <= t_death]
        after = [t for t in ts if t > t_death]
        if not before or not after:
            k.error = f"{port}: no PDU on one side of the death"
            continue
        k.latency_s[port] = after[0] - t_death
        k.gap_s[port] = after[0] - before[-1]
        k.points += [
            [round(b - t_death, 4), round(b - a, 4)] for a, b in zip(ts, ts[1:], strict=False)
        ]
    return k


def planned(lab: Lab, hot: bool, sup: list[ProcRef], ready_limit: float) -> Planned:
    """One `warm-restart teamd`; without `hot`, the supervisor and its standby are gone first
    (and come back after)."""
    r = Planned(hot)
    wait_pair(lab, ready_limit)
    wait_settled(lab, SETTLE_LIMIT_S)
    if not hot:
        sup[0].stop(5.0)
        _, _, _, sb_pid = pair(lab) or ("", 0, "", 0)
        if sb_pid:
            os.kill(sb_pid, signal.SIGKILL)
            gone(sb_pid)
    t0 = time.monotonic()
    p = subprocess.run(
        [str(WARM_RESTART), "--redis", lab.redis_url, "teamd", "--yes", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    r.wall_s = time.monotonic() - t0
    try:
        out: dict[str, Any] = json.loads(p.stdout)
        r.result = out.get("result")
        r.ready_s = (out.get("stages") or {}).get("ready")
        if r.result != "completed":
            r.error = f"{r.result}: {out.get('reason')}"
    except json.JSONDecodeError:
        r.error = f"exit {p.returncode}: {(p.stdout + p.stderr)[-300:]}"
    if not hot:
        sup[0] = start_supervisor(lab)
    return r


def measure_size(lags: int, members: int, kills: int, runs: int) -> SizeResult:
    res = SizeResult(lags, members)
    workdir = Path(f"/tmp/bench-pr-{lags}")
    clear_leftover(workdir)
    lab = Lab(workdir, prefix=f"bp{lags}")
    ready_limit = 30.0 + 0.5 * lags
    try:
        progress(f"size {lags} LAGs x {members}: lab up")
        lab.up(lags, members, recorder=True)
        lab.start_shim(shim_command(lab))
        deadline = time.monotonic() + 30.0 + 0.5 * lags
        while not_negotiated(lab):
            if time.monotonic() > deadline:
                raise BenchError("LAGs did not negotiate")
            time.sleep(0.3)
        sup = [start_supervisor(lab)]
        tail = RecordTail(Path(lab.state["recorder"]["out"]))
        for i in range(kills):
            k = measure_kill(lab, tail, i, ready_limit)
            res.kills.append(k)
            progress(
                f"  kill {i + 1}: promoted in {k.took_ms} ms; partner: largest silence "
                f"{max(k.gap_s.values(), default=float('nan')):.3f} s, first PDU "
                f"{max(k.latency_s.values(), default=float('nan')):.3f} s after the "
                f"death at the latest, {k.member_disabled} member flaps"
                + (f" ERROR {k.error}" if k.error else "")
            )
        for i in range(runs):
            for hot in (True, False):
                r = planned(lab, hot, sup, ready_limit)
                res.planned.append(r)
                progress(
                    f"  planned {i + 1} ({'hot standby' if hot else 'no hot standby'}):"
                    f" {r.result} in {r.wall_s:.2f} s, ready stage "
                    f"{(r.ready_s or 0) * 1000:.0f} ms" + (f" ERROR {r.error}" if r.error else "")
                )
        sup[0].stop(5.0)
    except (BenchError, OSError, subprocess.TimeoutExpired) as e:
        res.error = str(e)
        progress(f"  FAILED: {e}")
    finally:
        for d in Path("/proc").iterdir():  # shims the supervisor started are not the lab's
            try:
                argv = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if d.name.isdigit() and b"teamd-shim" in argv and str(workdir).encode() in argv:
                os.kill(int(d.name), signal.SIGKILL)
        lab_down(lab)
    return res


def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def fmt(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def table(results: list[SizeResult]) -> str:
    head = [
        "LAGs x members",
        "kills",
        "largest silence s",
        "silences > 1.2 s",
        "member flaps",
        "first PDU after death s (median / max)",
        "standby: notice -> owner ms (median)",
        "planned wall s: hot standby / none",
        "ready stage ms: hot / none",
    ]
    rows = []
    for r in results:
        gaps = [g for k in r.kills for g in k.gap_s.values()]
        lat = [x for k in r.kills for x in k.latency_s.values()]
        took = [k.took_ms for k in r.kills if k.took_ms is not None]
        hot = [p for p in r.planned if p.hot and p.wall_s is not None and not p.error]
        cold = [p for p in r.planned if not p.hot and p.wall_s is not None and not p.error]
        rows.append(
            [
                f"{r.lags} x {r.members}",
                str(len(r.kills)),
                fmt(max(gaps, default=None)),
                str(sum(1 for g in gaps if g > KILL_BUDGET_S)),
                str(sum(k.member_disabled for k in r.kills)),
                f"{fmt(med(lat))} / {fmt(max(lat, default=None))}",
                fmt(med(took), ".1f"),
                f"{fmt(med([p.wall_s or 0 for p in hot]), '.2f')} / "
                f"{fmt(med([p.wall_s or 0 for p in cold]), '.2f')}",
                f"{fmt(med([(p.ready_s or 0) * 1000 for p in hot]), '.0f')} / "
                f"{fmt(med([(p.ready_s or 0) * 1000 for p in cold]), '.0f')}",
            ]
        )
    widths = [max(len(h), *(len(x[i]) for x in rows)) for i, h in enumerate(head)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)) + " |" for x in rows
    ]
    return "\n".join(lines)


def plot(results: list[SizeResult], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in results if any(k.points for k in r.kills)]
    if not done:
        return False
    fig, axes = plt.subplots(
        1, len(done), figsize=(5.2 * len(done), 4.6), sharey=True, squeeze=False
    )
    for ax, r in zip(axes[0], done, strict=True):
        for k in r.kills:
            if k.points:
                xs, ys = zip(*k.points, strict=True)
                ax.scatter(xs, ys, s=7, alpha=0.6, label=f"kill {k.run + 1}")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.text(
            0.01, 0.02, " SIGKILL of the active", fontsize=7, transform=ax.get_xaxis_transform()
        )
        for y, style, text in (
            (KILL_BUDGET_S, "--", "1.2 s budget"),
            (FLAP_LIMIT_S, "-", "3.0 s flap limit"),
        ):
            ax.axhline(
                y, color="red" if y == FLAP_LIMIT_S else "dimgrey", linestyle=style, linewidth=1
            )
            ax.text(0.01, y, text, va="bottom", fontsize=8, transform=ax.get_yaxis_transform())
        ax.set_title(
            f"{r.lags} LAGs x {r.members}: {len(r.kills)} kills, "
            f"{sum(k.member_disabled for k in r.kills)} member flaps",
            fontsize=10,
        )
        ax.set_xlabel("seconds since the death of the active")
        ax.set_ylim(0, FLAP_LIMIT_S * 1.1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    axes[0][0].set_ylabel("PDU inter-arrival at the partner, s")
    fig.suptitle(
        "hot standby promoted on SIGKILL of the active (warm-restart supervise), "
        "OVS partner, LACP fast",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1,8,64")
    p.add_argument("--members", type=int, default=2)
    p.add_argument("--kills", type=int, default=3, help="SIGKILLs per size")
    p.add_argument(
        "--runs",
        type=int,
        default=3,
        help="planned restarts per size, each with and without a hot standby",
    )
    p.add_argument("--out", type=Path, default=REPO / "bench/out/promotion.json")
    p.add_argument("--png", type=Path, default=REPO / "bench/out/promotion.png")
    a = p.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    if os.geteuid() != 0:
        print("promotion: needs root (network namespaces, Open vSwitch)", file=sys.stderr)
        return 2
    info = machine_info()
    progress(
        f"promotion on death, planned with/without hot standby: sizes {sizes} x "
        f"{a.members}; {info['nproc']} cores, load {info['loadavg_at_start'][0]:.2f}"
    )
    results = [measure_size(n, a.members, a.kills, a.runs) for n in sizes]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps({"machine": info, "results": [asdict(r) for r in results]}, indent=1) + "\n"
    )
    plotted = plot(results, a.png)
    print(table(results))
    print(f"\nRaw numbers: {a.out}" + (f"; plot: {a.png}" if plotted else ""))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
