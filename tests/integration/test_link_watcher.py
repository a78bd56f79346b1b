"""The process's one rtnetlink watcher (links.LinkWatcher) on the real kernel, inside a netns of
our own: a late subscriber gets the whole table, every subscriber gets every change, and a
rename comes as the new name first, then the old one gone (so the team backend's cache, keyed by
ifindex, keeps what it knew of the netdev)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, subprocess, sys, threading, time
sys.path.insert(0, sys.argv[1])
from teamd_shim.io.links import LinkWatcher
w = LinkWatcher()
first, late = [], []
lock = threading.Lock()
def rec(into):
    def on_links(table):
        with lock:
            into.append(["table", sorted(table)])
    def on_link(name, info):
        with lock:
            into.append([name, None if info is None else [info.ifindex, info.up]])
    return on_links, on_link
w.subscribe(*rec(first))
w.start()
assert w.ready.wait(10), "no first dump"
w.subscribe(*rec(late))  # after the dump: gets the table at once
def ip(*a): subprocess.run(["ip", *a], check=True)
ip("link", "add", "lwa", "type", "veth", "peer", "name", "lwb")
time.sleep(0.3)
ip("link", "set", "lwa", "name", "lwc")
time.sleep(0.3)
ip("link", "del", "lwc")
time.sleep(0.5)
w.stop()
with lock:
    print(json.dumps({"first": first, "late": late}))
"""


def events(log: list, names: set[str]) -> list[tuple[str, bool]]:
    """(name, present) in order, for our netdevs, repeats of one state folded."""
    out: list[tuple[str, bool]] = []
    for name, info in (e for e in log if e[0] != "table"):
        if name in names and (not out or out[-1] != (name, info is not None)):
            out.append((name, info is not None))
    return out


def test_one_watcher_serves_every_subscriber_and_orders_a_rename() -> None:
    ns = f"lw-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", PROBE, str(ROOT / "teamd-shim")],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    got = json.loads(out)
    assert got["first"][0] == ["table", ["lo"]]
    assert got["late"][0] == ["table", ["lo"]]
    names = {"lwa", "lwb", "lwc"}
    for log in (got["first"], got["late"]):
        seq = events(log, names)
        # created; renamed lwa -> lwc (lwc first, then lwa gone); deleted with its peer
        assert seq.index(("lwa", True)) < seq.index(("lwc", True)) < seq.index(("lwa", False))
        assert seq[-2:] in ([("lwc", False), ("lwb", False)], [("lwb", False), ("lwc", False)])
