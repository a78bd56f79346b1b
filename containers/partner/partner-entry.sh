#!/bin/bash
# PID 2 of teamd-hitless/partner (tini is PID 1): a private Open vSwitch, started as
# orchestrator/lab/ovs.py starts it on the host tier -- a fresh database, ovsdb-server, then
# ovs-vswitchd (userspace datapath: bridges are created with datapath_type=netdev, no kernel
# module), every OVS_* path from the environment (the image sets /run/openvswitch etc.) -- and
# stays in the foreground. SIGTERM/SIGINT: `ovs-appctl exit --cleanup`, then ovsdb-server, exit 0.
# If a daemon dies, the container exits non-zero with the end of its log.
# The bridge and bonds are created by whoever drives the partner (ovs-vsctl in the container).
set -euo pipefail

RUN=${OVS_RUNDIR:-/run/openvswitch}
DBDIR=${OVS_DBDIR:-/var/lib/openvswitch}
LOGDIR=${OVS_LOGDIR:-/var/log/openvswitch}
SCHEMA=${OVS_PKGDATADIR:-/usr/share/openvswitch}/vswitch.ovsschema
WAIT_S=${PARTNER_START_TIMEOUT:-30}

say() { echo "partner: $*"; }
die() { echo "partner: $*" >&2; exit 1; }

# The userspace datapath needs /dev/net/tun even for a bridge without internal ports (it opens
# its own tap "ovs-netdev"): without it add-br "succeeds" but the bridge is never created.
# Give the container `--device /dev/net/tun` (compose: devices: [/dev/net/tun]); failing that,
# under Docker's defaults (CAP_MKNOD, and the device cgroup allows tun, c 10:200) create it.
if [ ! -c /dev/net/tun ]; then
  if mkdir -p /dev/net && mknod -m 600 /dev/net/tun c 10 200 2>/dev/null; then
    say "no /dev/net/tun was given (--device /dev/net/tun): created it with mknod"
  else
    die "/dev/net/tun is missing and cannot be created (no CAP_MKNOD?): run the container" \
        "with --device /dev/net/tun; the userspace datapath (datapath_type=netdev) needs it"
  fi
fi

mkdir -p "$RUN" "$DBDIR" "$LOGDIR" "${OVS_SYSCONFDIR:-/etc}/openvswitch"
rm -f "$DBDIR/conf.db" "$DBDIR/.conf.db.~lock~" "$RUN"/*.pid "$RUN"/*.ctl "$RUN/db.sock"
ovsdb-tool create "$DBDIR/conf.db" "$SCHEMA"

wait_for() {  # path pid name
  local i
  for ((i = 0; i < WAIT_S * 50; i++)); do
    [ -e "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || { tail -n 20 "$LOGDIR/$3.log" >&2 || true; die "$3 exited early"; }
    sleep 0.02
  done
  die "$3 did not create $1 within $WAIT_S s"
}

ovsdb-server "$DBDIR/conf.db" \
  --remote="punix:$RUN/db.sock" --unixctl="$RUN/ovsdb-server.ctl" \
  --pidfile="$RUN/ovsdb-server.pid" --log-file="$LOGDIR/ovsdb-server.log" \
  --no-chdir -vconsole:off &
db_pid=$!
wait_for "$RUN/db.sock" "$db_pid" ovsdb-server
ovs-vsctl --db="unix:$RUN/db.sock" --no-wait init

ovs-vswitchd "unix:$RUN/db.sock" \
  --unixctl="$RUN/ovs-vswitchd.ctl" --pidfile="$RUN/ovs-vswitchd.pid" \
  --log-file="$LOGDIR/ovs-vswitchd.log" --no-chdir -vconsole:off &
vs_pid=$!
wait_for "$RUN/ovs-vswitchd.ctl" "$vs_pid" ovs-vswitchd
# `ovs-appctl -t ovs-vswitchd` looks for <rundir>/ovs-vswitchd.<pid>.ctl; the fixed name above
# is the one ovs.py uses (`ovs-appctl -t /run/openvswitch/ovs-vswitchd.ctl`). Both work.
ln -sf ovs-vswitchd.ctl "$RUN/ovs-vswitchd.$vs_pid.ctl"
ln -sf ovsdb-server.ctl "$RUN/ovsdb-server.$db_pid.ctl"

stop() {
  trap - TERM INT
  say "stopping (ovs-vswitchd pid $vs_pid, ovsdb-server pid $db_pid)"
  if kill -0 "$vs_pid" 2>/dev/null; then
    # --cleanup removes the netdev datapath's tap devices too.
    ovs-appctl -t "$RUN/ovs-vswitchd.ctl" --timeout=5 exit --cleanup 2>/dev/null \
      || kill "$vs_pid" 2>/dev/null || true
    wait "$vs_pid" 2>/dev/null || true
  fi
  kill "$db_pid" 2>/dev/null || true
  wait "$db_pid" 2>/dev/null || true
  exit "${1:-0}"
}
trap stop TERM INT

say "ready: $(ovs-vswitchd --version | head -n1), ovsdb-server pid $db_pid," \
    "ovs-vswitchd pid $vs_pid, db unix:$RUN/db.sock, logs $LOGDIR"
rc=0
wait -n "$db_pid" "$vs_pid" || rc=$?
for n in ovsdb-server ovs-vswitchd; do
  pid=$db_pid; [ $n = ovs-vswitchd ] && pid=$vs_pid
  kill -0 "$pid" 2>/dev/null && continue
  echo "partner: $n (pid $pid) exited (status $rc); end of $LOGDIR/$n.log:" >&2
  tail -n 20 "$LOGDIR/$n.log" >&2 || true
done
stop 1
