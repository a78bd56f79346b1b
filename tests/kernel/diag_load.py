"""Diagnostic (guest only): what slows a standby's start? Import time with/without observers.

    python tests/kernel/vm.py --timeout 240 -- .venv/bin/python tests/kernel/diag_load.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from guestlab import DUT_IP, DUT_NS, GuestLab  # noqa: E402

OUT = Path(os.environ.get("VM_RESULTS_DIR", "/tmp"))
T0 = time.monotonic()
PY = sys.executable


def note(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}] {msg}", flush=True)


def import_time(what: str) -> float:
    t = time.monotonic()
    subprocess.run([PY, "-c", what], check=True)
    return time.monotonic() - t


def ps() -> str:
    return subprocess.run(["ps", "-eo", "pid,etimes,times,pcpu,args", "--sort=-times"],
                          capture_output=True, text=True).stdout[:6000]


def main() -> int:
    lab = GuestLab(Path(tempfile.mkdtemp(prefix="diag")))
    try:
        lab.up()
        lab.start_shim()
        lab.start_partner()
        lab.set_ip(DUT_NS, lab.lags[0], DUT_IP)
        note("lab up")
        time.sleep(5)
        for what in ("pass", "import teamd_shim.daemon, teamd_shim.dataplane.team"):
            note(f"idle: {what}: " + ", ".join(f"{import_time(what):.1f}" for _ in range(2)))
        lab.start_observers(200.0)
        note("observers up")
        time.sleep(2)
        for what in ("pass", "import teamd_shim.daemon, teamd_shim.dataplane.team"):
            note(f"observed: {what}: " + ", ".join(f"{import_time(what):.1f}" for _ in range(2)))
        print(ps(), flush=True)
        t1 = [os.times()]
        stat0 = Path("/proc/stat").read_text().splitlines()[0]
        time.sleep(5)
        stat1 = Path("/proc/stat").read_text().splitlines()[0]
        note(f"cpu over 5 s: {stat0} -> {stat1}")
        print(ps(), flush=True)
        del t1
    finally:
        lab.down()
        note("down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
