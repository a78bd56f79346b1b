#!/bin/bash
# Kernel-tier smoke test; runs INSIDE the VM:
#     python tests/kernel/vm.py -- bash /work/main/tests/kernel/smoke.sh
# (a) a real team device + teamnl; (b) stock teamd LACP (fast rate) on both ends of two veth
# pairs between two namespaces reaches "current"+selected on all ports, and traffic flows;
# (c) the venv's python imports pyroute2 and redis; (d) AF_PACKET + generic netlink family
# "team" through pyroute2.  Informational: redis-server and ovs-vswitchd, start-up timings.
set -u
REPO=${REPO:-/work/main}
PY=$REPO/.venv/bin/python
FAILED=()
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
section() { printf '\n===== %s =====\n' "$*"; }
pass() { echo "SMOKE PASS: $*"; }
fail() { echo "SMOKE FAIL: $*"; FAILED+=("$1"); }
info() { echo "SMOKE INFO: $*"; }

section "environment"
uname -a
info "cpus=$(nproc) mem=$(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
grep -E '^(team|team_mode_\w+|veth|9p|openvswitch|bonding) ' /proc/modules | cut -d' ' -f1 | xargs

# ---------------------------------------------------------------------------------------- (a)
section "(a) team device + teamnl"
if ip link add t0 type team && ip -d link show t0 && teamnl t0 options | tee /tmp/t0.options \
        && grep -q 'mode' /tmp/t0.options; then
    pass "(a) ip link add type team; teamnl options shows mode"
else
    fail "(a) team device / teamnl"
fi

# ---------------------------------------------------------------------------------------- (d)
section "(d) AF_PACKET + generic netlink family team (pyroute2)"
t=$(now)
if "$PY" - <<'EOF'
import socket
import struct

from pyroute2 import IPRoute
from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST, genlmsg, nla
from pyroute2.netlink.generic import GenericNetlinkSocket


class teammsg(genlmsg):
    prefix = "TEAM_ATTR_"
    nla_map = (
        ("TEAM_ATTR_UNSPEC", "none"),
        ("TEAM_ATTR_TEAM_IFINDEX", "uint32"),
        ("TEAM_ATTR_LIST_OPTION", "list_option"),
        ("TEAM_ATTR_LIST_PORT", "list_port"),
    )

    class list_option(nla):
        nla_map = (("TEAM_ATTR_ITEM_OPTION_UNSPEC", "none"), ("TEAM_ATTR_ITEM_OPTION", "item"))

        class item(nla):
            prefix = "TEAM_ATTR_OPTION_"
            nla_map = (
                ("TEAM_ATTR_OPTION_UNSPEC", "none"),
                ("TEAM_ATTR_OPTION_NAME", "asciiz"),
                ("TEAM_ATTR_OPTION_CHANGED", "flag"),
                ("TEAM_ATTR_OPTION_TYPE", "uint8"),
                ("TEAM_ATTR_OPTION_DATA", "cdata"),
                ("TEAM_ATTR_OPTION_REMOVED", "flag"),
                ("TEAM_ATTR_OPTION_PORT_IFINDEX", "uint32"),
                ("TEAM_ATTR_OPTION_ARRAY_INDEX", "uint32"),
            )

    class list_port(nla):
        nla_map = (("TEAM_ATTR_ITEM_PORT_UNSPEC", "none"), ("TEAM_ATTR_ITEM_PORT", "item"))

        class item(nla):
            prefix = "TEAM_ATTR_PORT_"
            nla_map = (
                ("TEAM_ATTR_PORT_UNSPEC", "none"),
                ("TEAM_ATTR_PORT_IFINDEX", "uint32"),
                ("TEAM_ATTR_PORT_CHANGED", "flag"),
                ("TEAM_ATTR_PORT_LINKUP", "flag"),
                ("TEAM_ATTR_PORT_SPEED", "uint32"),
                ("TEAM_ATTR_PORT_DUPLEX", "uint8"),
                ("TEAM_ATTR_PORT_REMOVED", "flag"),
            )


s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8809))  # slow protocols
s.close()
print("AF_PACKET socket: ok")

with IPRoute() as ipr:
    idx = ipr.link_lookup(ifname="t0")[0]
g = GenericNetlinkSocket()
g.bind("team", teammsg)
print(f"genl family team bound: id={g.prid} groups={dict(g.mcast_groups)}")
msg = teammsg()
msg["cmd"] = 2  # TEAM_CMD_OPTIONS_GET
msg["version"] = 1
msg["attrs"] = [("TEAM_ATTR_TEAM_IFINDEX", idx)]
opts = {}
for reply in g.nlm_request(msg, msg_type=g.prid, msg_flags=NLM_F_REQUEST | NLM_F_ACK):
    lst = reply.get_attr("TEAM_ATTR_LIST_OPTION")
    for item in lst.get_attrs("TEAM_ATTR_ITEM_OPTION") if lst else ():
        typ, data = item.get_attr("TEAM_ATTR_OPTION_TYPE"), item.get_attr("TEAM_ATTR_OPTION_DATA")
        if typ == 5:
            data = data.rstrip(b"\0").decode()
        elif typ == 3 and data:
            data = struct.unpack("=I", data)[0]
        opts[item.get_attr("TEAM_ATTR_OPTION_NAME")] = data
g.close()
print("OPTIONS_GET over pyroute2:", opts)
assert opts.get("mode") in ("", None) or isinstance(opts["mode"], str), opts
assert "mode" in opts, opts
EOF
then
    pass "(d) AF_PACKET socket, genl bind('team'), OPTIONS_GET ($(elapsed "$t")s)"
else
    fail "(d) AF_PACKET / genl team via pyroute2"
fi
ip link del t0

# ---------------------------------------------------------------------------------------- (b)
section "(b) stock teamd LACP (fast rate) across two veth pairs"
mkdir -p /tmp/lacp
ip netns add nsA && ip netns add nsB
ip link add a1 netns nsA type veth peer name b1 netns nsB
ip link add a2 netns nsA type veth peer name b2 netns nsB
t=$(now)  # LACP convergence is timed from the first teamd start
for side in A B; do
    p=$(echo $side | tr AB ab)
    cat > /tmp/lacp/t$side.conf <<EOF
{"device": "t$side",
 "runner": {"name": "lacp", "active": true, "fast_rate": true, "tx_hash": ["eth", "ipv4"]},
 "link_watch": {"name": "ethtool"},
 "ports": {"${p}1": {}, "${p}2": {}}}
EOF
    ip netns exec ns$side ip link set lo up
    ip netns exec ns$side teamd -d -f /tmp/lacp/t$side.conf || fail "(b) teamd t$side start"
done
info "(b) both teamd started $(elapsed "$t")s after the first"
ip netns exec nsA ip addr add 192.0.2.1/24 dev tA
ip netns exec nsB ip addr add 192.0.2.2/24 dev tB
ip netns exec nsA ip link set tA up
ip netns exec nsB ip link set tB up
lacp_ok() {  # both ports of t$1 "current" and selected; one cheap process per side per poll
    nsenter --net=/run/netns/ns$1 teamdctl t$1 state view 2>/dev/null | awk '
        /^ +state: current$/ { c++ } /^ +selected: yes$/ { s++ } END { exit !(c == 2 && s == 2) }'
}
converged=""
for _ in $(seq 1 100); do
    if lacp_ok A && lacp_ok B; then converged=$(elapsed "$t"); break; fi
    sleep 0.1
done
ip netns exec nsA teamdctl tA state view
ip netns exec nsB teamdctl tB state dump | "$PY" -c '
import json, sys
for name, p in json.load(sys.stdin)["ports"].items():
    print("tB", name, "state:", p["runner"]["state"], "selected:", p["runner"]["selected"])'
if [ -n "$converged" ]; then
    pass "(b) LACP both sides: both ports current+selected ${converged}s after teamd start"
else
    fail "(b) LACP did not converge within ~15 s"
    ip netns exec nsA teamdctl tA state dump
fi
ip netns exec nsA teamnl tA ports
ip netns exec nsA teamnl tA getoption mode
ip netns exec nsA ip -br link
if ip netns exec nsA busybox ping -c 3 -W 2 192.0.2.2; then
    pass "(b) ping across the LAG"
else
    fail "(b) ping across the LAG"
fi
ip netns exec nsA teamd -k -t tA
ip netns exec nsB teamd -k -t tB

# ---------------------------------------------------------------------------------------- (c)
section "(c) venv python over 9p"
t=$(now); "$PY" -c pass; info "python -c pass: $(elapsed "$t")s"
t=$(now)
if "$PY" -c "import pyroute2, redis; print('ok')"; then
    pass "(c) import pyroute2, redis ($(elapsed "$t")s)"
else
    fail "(c) import pyroute2, redis"
fi
t=$(now); "$PY" -c "import pyroute2, redis"; info "import pyroute2, redis (warm): $(elapsed "$t")s"
t=$(now)
if "$PY" -m pytest --version; then
    info "python -m pytest --version: $(elapsed "$t")s"
else
    fail "(c) python -m pytest --version"
fi

# ---------------------------------------------------------------------------------------- info
section "informational: redis-server, ovs-vswitchd"
if command -v redis-server >/dev/null; then
    redis-server --port 6399 --bind 127.0.0.1 --save '' --appendonly no --dir /tmp \
        --daemonize yes --logfile /tmp/redis.log >/dev/null
    sleep 0.5
    if "$PY" -c "import redis; print('redis', redis.Redis(port=6399).ping())"; then
        info "redis-server runs in the guest: yes"
    else
        info "redis-server runs in the guest: NO"; tail -5 /tmp/redis.log
    fi
    "$PY" -c "import redis; redis.Redis(port=6399).shutdown(nosave=True)" 2>/dev/null
else
    info "redis-server not installed on the host"
fi
if command -v ovs-vswitchd >/dev/null; then
    export OVS_RUNDIR=/run/openvswitch OVS_DBDIR=/tmp/ovs OVS_LOGDIR=/var/log/openvswitch
    mkdir -p $OVS_RUNDIR $OVS_DBDIR $OVS_LOGDIR
    ovsdb-tool create $OVS_DBDIR/conf.db /usr/share/openvswitch/vswitch.ovsschema &&
    ovsdb-server $OVS_DBDIR/conf.db --remote=punix:$OVS_RUNDIR/db.sock --pidfile --detach \
        --log-file &&
    ovs-vsctl --no-wait init &&
    ovs-vswitchd --pidfile --detach --log-file &&
    ovs-vsctl add-br br-smoke && ovs-vsctl show && ip -br link show br-smoke
    if [ $? -eq 0 ]; then
        info "ovs-vswitchd runs in the guest: yes"
    else
        info "ovs-vswitchd runs in the guest: NO"; tail -5 $OVS_LOGDIR/ovs-vswitchd.log
    fi
    ovs-appctl -t ovs-vswitchd exit 2>/dev/null; ovs-appctl -t ovsdb-server exit 2>/dev/null
else
    info "ovs-vswitchd not installed on the host"
fi

section "summary"
if [ ${#FAILED[@]} -eq 0 ]; then
    echo "SMOKE RESULT: all checks passed"
    exit 0
fi
printf 'SMOKE RESULT: FAILED: %s\n' "${FAILED[@]}"
exit 1
