"""Diagnostic (guest only): why does LAG 2 not negotiate? Dumps both sides after a while.

python tests/kernel/vm.py --timeout 240 -- .venv/bin/python tests/kernel/diag_lag2.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from guestlab import DUT_NS, PTNR_NS, GuestLab, teamd_conf

from teamd_lab.topology import PARTNER_SYSTEM_MAC

OUT = Path(os.environ.get("VM_RESULTS_DIR", "/tmp"))
T0 = time.monotonic()


def sh(ns: str, cmd: str) -> str:
    p = subprocess.run(
        ["nsenter", f"--net=/run/netns/{ns}", "sh", "-c", cmd],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return f"[{ns}] $ {cmd}\n{p.stdout}{p.stderr}\n"


def note(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}] {msg}", flush=True)


def main() -> int:
    lab = GuestLab(Path(tempfile.mkdtemp(prefix="diag")))
    report = []
    dumps = []
    try:
        lab.up()
        note("lab up")
        lab.start_shim()
        note("shim started")
        # start tcpdump on every port, both sides, before the partner starts
        for m in lab.members:
            for ns, dev in ((DUT_NS, m.dut_port), (PTNR_NS, m.partner_port)):
                lab.spawn(
                    f"tcpdump-{dev}",
                    ns,
                    ["tcpdump", "-l", "-n", "-e", "-i", dev, "ether", "proto", "0x8809"],
                )
        # same wait as GuestLab.start_partner, but teamd in the foreground with -g
        from pyroute2 import IPRoute

        with IPRoute(netns=DUT_NS, flags=0) as ipr:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                links = list(ipr.link("dump"))
                masters = {lk.get_attr("IFLA_IFNAME"): lk.get_attr("IFLA_MASTER") for lk in links}
                teams = {lk.get_attr("IFLA_IFNAME"): lk["index"] for lk in links}
                if all(masters.get(m.dut_port) == teams.get(m.lag) for m in lab.members):
                    break
                time.sleep(0.2)
        note("members enslaved")
        report.append(sh(DUT_NS, "ip -s -d link show"))
        for lag in lab.lags:
            bond = lab.bond(lag)
            ports = [m.partner_port for m in lab.members if m.lag == lag]
            conf = lab.workdir / f"{bond}.conf"
            conf.write_text(json.dumps(teamd_conf(bond, ports, PARTNER_SYSTEM_MAC)))
            lab.spawn(f"teamd-{bond}", PTNR_NS, ["teamd", "-f", str(conf), "-g"])
        note("partner teamds started")
        time.sleep(1.0)
        for m in lab.members:
            lab.spawn(
                f"tcpdump-{m.partner_port}",
                PTNR_NS,
                ["tcpdump", "-l", "-n", "-e", "-i", m.partner_port, "ether", "proto", "0x8809"],
            )
        with IPRoute(netns=PTNR_NS, flags=0) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="bond1")[0], state="up")
        note("bond1 admin up; bond2 left down")
        time.sleep(12)
        note("phase A dump")
        for lag in lab.lags:
            report.append(sh(PTNR_NS, f"teamdctl {lab.bond(lag)} state view"))
        report.append(sh(PTNR_NS, "ip -s link show"))
        with IPRoute(netns=PTNR_NS, flags=0) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="bond2")[0], state="up")
        note("bond2 admin up")
        time.sleep(8)
        note("dumping")
        for ns in (DUT_NS, PTNR_NS):
            report.append(sh(ns, "ip -s -d link show"))
        for lag in lab.lags:
            report.append(sh(DUT_NS, f"teamnl {lag} options; teamnl {lag} ports"))
            report.append(
                sh(
                    DUT_NS,
                    f"{lab.shim_argv()[0]} --ctl-dir {lab.workdir / 'ctl'} ctl {lag} state dump",
                )
            )
            report.append(sh(PTNR_NS, f"teamdctl {lab.bond(lag)} state dump"))
            report.append(sh(PTNR_NS, f"teamnl {lab.bond(lag)} options"))
        note("dumped")
    except Exception as e:
        report.append(f"EXCEPTION {e!r}")
        note(f"exception {e!r}")
    finally:
        (OUT / "diag-report.txt").write_text("\n".join(report + dumps))
        for ref in lab.procs.values():
            try:
                ref.stop(2.0)
            except Exception:
                pass
        for f in lab.workdir.glob("*.log"):
            (OUT / f"diag-{f.name}").write_text(f.read_text()[-300000:])
        for f in (lab.workdir / "ctl").glob("*.log"):
            (OUT / f"diag-ctl-{f.name}").write_text(f.read_text()[-300000:])
        lab.down()
        note("down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
