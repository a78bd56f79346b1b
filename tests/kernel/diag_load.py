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
from guestlab import DUT_IP, DUT_NS, GuestLab

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
    return subprocess.run(
        ["ps", "-eo", "pid,etimes,times,pcpu,args", "--sort=-times"], capture_output=True, text=True
    ).stdout[:6000]


def main() -> int:
    lab = GuestLab(Path(tempfile.mkdtemp(prefix="diag")))
    try:
        lab.up()
        lab.start_shim()
        lab.start_partner()
        lab.set_ip(DUT_NS, lab.lags[0], DUT_IP)
        note("lab up")
        time.sleep(3)
        steps = {
            "pass": "pass",
            "import": "import teamd_shim.cli, teamd_shim.daemon.shim, teamd_shim.io.dataplane.team",
            "import+TeamDataplane": "import teamd_shim.cli, teamd_shim.daemon.shim\n"
            "from teamd_shim.io.dataplane.team import TeamDataplane\n"
            "from teamd_shim.io.links import LinkWatcher\n"
            "import time; t = time.monotonic()\n"
            "d = TeamDataplane(LinkWatcher())\n"
            "print(f'TeamDataplane() {time.monotonic() - t:.1f} s')",
        }
        for phase in ("idle", "observed"):
            if phase == "observed":
                lab.start_observers(100.0)
                note("observers up")
                time.sleep(2)
            for name, code in steps.items():
                ts = []
                for _ in range(2):
                    t = time.monotonic()
                    subprocess.run(lab.nsexec(DUT_NS, [PY, "-c", code]), check=True)
                    ts.append(time.monotonic() - t)
                note(f"{phase}: {name}: " + ", ".join(f"{x:.1f}" for x in ts))
        print(ps()[:1500], flush=True)
        stat0 = Path("/proc/stat").read_text().splitlines()[0]
        time.sleep(5)
        stat1 = Path("/proc/stat").read_text().splitlines()[0]
        note(f"cpu over 5 s: {stat0} -> {stat1}")
        env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
        p = subprocess.run(
            lab.nsexec(DUT_NS, [PY, "-c", steps["import"]]), env=env, capture_output=True, text=True
        )
        rows = [ln.split("|") for ln in p.stderr.splitlines() if ln.startswith("import time:")]
        rows = sorted(rows[1:], key=lambda r: -int(r[1]))[:25]
        print("\n".join("|".join(r) for r in rows), flush=True)
    finally:
        lab.down()
        note("down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
