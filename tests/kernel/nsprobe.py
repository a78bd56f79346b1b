#!/usr/bin/env python3
"""Separate observer processes of the kernel tier (run inside the VM, one per role).

    nsprobe.py dut-recorder OUT LAG...      RTM_NEWLINK of our team netdevs + team change_event
    nsprobe.py partner-monitor OUT DEV...   partner: RTM_NEWLINK of its team netdevs and, every
                                            200 ms, teamd's state dump over its unix socket
    nsprobe.py traffic OUT RATE SRC DST     UDP with sequence numbers, SRC->DST (run in the DUT
                                            namespace; the receiver runs in the partner one)

Every process writes JSON lines `{"t": CLOCK_MONOTONIC, ...}` to OUT (line-buffered), so the
test can cut any time window out afterwards; CLOCK_MONOTONIC is one clock for the whole guest.
They are separate processes on purpose: the observer must not share a GIL or a fate with what
it observes. Stopped with SIGTERM.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

IFF_LOWER_UP = 0x10000
_stop = threading.Event()


def _out(path: str) -> Any:
    f = open(path, "a", buffering=1)
    lock = threading.Lock()

    def write(**rec: Any) -> None:
        line = json.dumps({"t": round(time.monotonic(), 4), **rec})
        with lock:
            f.write(line + "\n")

    return write


def _link_rec(m: Any) -> dict[str, Any]:
    return {
        "ifname": m.get_attr("IFLA_IFNAME"),
        "ifindex": m["index"],
        "carrier": m.get_attr("IFLA_CARRIER"),
        "lower_up": bool(m["flags"] & IFF_LOWER_UP),
        "master": m.get_attr("IFLA_MASTER"),
    }


def watch_links(write: Any, names: set[str] | None) -> None:
    """Every RTM_NEWLINK/DELLINK of the named netdevs (or of team netdevs when None)."""
    from pyroute2 import IPRoute

    with IPRoute() as mon:
        mon.bind()
        with IPRoute() as ipr:
            for m in ipr.link("dump"):
                r = _link_rec(m)
                if names is None or r["ifname"] in names:
                    write(ev="link-initial", **r)
        write(ev="ready-links")
        while not _stop.is_set():
            for m in mon.get():
                if m.get("event") not in ("RTM_NEWLINK", "RTM_DELLINK"):
                    continue
                r = _link_rec(m)
                if names is None or r["ifname"] in names:
                    write(ev=m.get("event"), **r)


def watch_team_options(write: Any) -> None:
    """Every change_event message about `enabled` (any team in this namespace)."""
    from teamd_shim.io.dataplane.teamnl import TeamNL

    with TeamNL(events=True) as ev:
        write(ev="ready-options")
        while not _stop.is_set():
            for options, _ports in ev.events():
                for o in options:
                    if o.name == "enabled" and o.port:
                        write(
                            ev="enabled",
                            team=o.team,
                            port=o.port,
                            value=bool(o.value),
                            removed=o.removed,
                        )


def teamd_state_dump(dev: str, timeout: float = 1.0) -> dict[str, Any]:
    """`teamdctl DEV state dump` without a process: teamd's usock protocol (teamd_usock.c)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(timeout)
    try:
        s.connect(f"/run/teamd/{dev}.sock")
        s.send(b"REQUEST\nStateDump\n")
        data = s.recv(1 << 20).decode()
    finally:
        s.close()
    head, _, body = data.partition("\n")
    if head != "REPLY_SUCCESS":
        raise RuntimeError(f"teamd {dev}: {data[:200]}")
    return json.loads(body)


def port_states(dump: dict[str, Any]) -> dict[str, str]:
    """port -> "current+selected" when good, else what it is."""
    out = {}
    for name, p in dump.get("ports", {}).items():
        r = p.get("runner", {})
        good = r.get("state") == "current" and r.get("selected") is True
        out[name] = "ok" if good else f"{r.get('state')}/sel={r.get('selected')}"
    return out


# 200 ms: any real partner flap lasts seconds (expired -> defaulted takes 3 s), and a 100 ms
# poll of two teamd instances cost a fifth of a guest vCPU that a starting standby then lacks.
POLL_S = 0.2


def poll_partner(write: Any, devs: list[str], every: float = POLL_S) -> None:
    last: dict[str, Any] = {}
    nxt = time.monotonic()
    polls = 0
    while not _stop.is_set():
        for dev in devs:
            try:
                st: Any = port_states(teamd_state_dump(dev))
            except Exception as e:
                st = {"error": str(e)[:100]}
            if st != last.get(dev):
                write(ev="partner-state", dev=dev, ports=st)
                last[dev] = st
        polls += 1
        if polls % 50 == 0:
            write(ev="polls", n=polls)  # proof of the 100 ms cadence
        nxt += every
        _stop.wait(max(0.0, nxt - time.monotonic()))


def traffic(write: Any, rate: float, src: str, dst: str, recv_ns: str) -> None:
    """Send seq-numbered UDP src->dst at `rate`/s; receive it in the partner namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    peer = os.open(f"/run/netns/{recv_ns}", os.O_RDONLY)
    if libc.setns(peer, 0x40000000) != 0:  # CLONE_NEWNET: the receiving socket lives there
        raise OSError(ctypes.get_errno(), "setns to the partner namespace")
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((dst, 9999))
    rx.settimeout(0.5)
    libc.setns(own, 0x40000000)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind((src, 0))
    got: list[int] = []

    def receive() -> None:
        while not _stop.is_set():
            try:
                data = rx.recv(64)
            except OSError:
                continue
            got.append(int(data.split(b" ")[0]))

    threading.Thread(target=receive, daemon=True).start()
    t0 = time.monotonic()
    write(ev="traffic-start", t0=t0, rate=rate)
    seq, errors = 0, 0
    period = 1.0 / rate
    last_flush = t0
    while not _stop.is_set():
        due = t0 + seq * period
        delay = due - time.monotonic()
        if delay > 0:
            _stop.wait(delay)
        try:
            tx.sendto(b"%d x" % seq, (dst, 9999))
        except OSError:
            errors += 1  # e.g. no route while the team netdev is gone (cold restart)
        seq += 1
        now = time.monotonic()
        if now - last_flush >= 1.0:
            batch, got[:] = got[:], []
            write(ev="rx", seqs=batch, sent=seq, send_errors=errors)
            last_flush = now
    time.sleep(0.3)
    write(ev="rx", seqs=got[:], sent=seq, send_errors=errors, final=True)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, lambda *a: _stop.set())
    what, out = argv[0], argv[1]
    write = _out(out)
    threads = []
    # Import here, before any thread starts: two threads importing pyroute2 at once trip over
    # its circular imports ("partially initialized module"), and the recorder went deaf.
    if what == "dut-recorder":
        import pyroute2

        from teamd_shim.io.dataplane import teamnl  # noqa: F401
    elif what == "partner-monitor":
        import pyroute2  # noqa: F401
    if what == "dut-recorder":
        threads = [
            threading.Thread(target=watch_links, args=(write, set(argv[2:])), daemon=True),
            threading.Thread(target=watch_team_options, args=(write,), daemon=True),
        ]
    elif what == "partner-monitor":
        threads = [
            threading.Thread(target=watch_links, args=(write, set(argv[2:])), daemon=True),
            threading.Thread(target=poll_partner, args=(write, argv[2:]), daemon=True),
        ]
    elif what == "traffic":
        threads = [
            threading.Thread(
                target=traffic, args=(write, float(argv[2]), argv[3], argv[4], argv[5])
            )
        ]
    else:
        print(f"unknown role {what}", file=sys.stderr)
        return 2
    for t in threads:
        t.start()
    while not _stop.is_set() and any(t.is_alive() for t in threads):
        _stop.wait(0.2)
    _stop.set()
    for t in threads:
        if not t.daemon:
            t.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
