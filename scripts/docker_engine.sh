#!/usr/bin/env bash
# Make sure a Docker engine answers on /var/run/docker.sock; idempotent, run as root by
# `make images`. There is no systemd on these machines (PID 1 is not an init), so dockerd is
# started here, in the background, and left running:
#   - something answers already          -> nothing is touched ("engine already answering")
#   - otherwise apt-installs docker.io if missing, then starts
#       dockerd --live-restore --bridge=none --iptables=false --ip-masq=false
#     logging to /var/log/teamd-hitless-dockerd.log, and waits until it answers (limit 30 s).
# --bridge=none: no docker0 and no private-range bridge; every container of the project uses
# network_mode none, host or container:<x>. BuildKit needs a bridge, so images are built with
# the legacy builder (scripts/build_images.sh).
set -euo pipefail

SOCK=/var/run/docker.sock
LOG=${TEAMD_HITLESS_DOCKERD_LOG:-/var/log/teamd-hitless-dockerd.log}
WAIT_S=30

die() { echo "docker: $*" >&2; exit 1; }

answers() {
  # `docker version` exits non-zero when the server part cannot be reached.
  [ -S "$SOCK" ] && timeout 10 docker -H "unix://$SOCK" version >/dev/null 2>&1
}

if [ "$(id -u)" != 0 ]; then
  echo "docker: must run as root (it may install docker.io and start dockerd)." >&2
  exit 2
fi

if command -v docker >/dev/null && answers; then
  v=$(docker -H "unix://$SOCK" version --format '{{.Server.Version}}' 2>/dev/null || echo '?')
  echo "docker: engine already answering on $SOCK (server $v)"
  exit 0
fi

# docker.io brings dockerd, containerd, runc (and the Debian docker client at /usr/bin/docker;
# another client on PATH, e.g. /usr/local/bin/docker, is fine: it negotiates the API version).
if ! dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q 'install ok installed'; then
  echo "docker: installing Debian package docker.io"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's init script from starting a default dockerd (with a docker0 bridge and
  # iptables rules): a policy-rc.d that denies service starts, only while we install.
  tmp_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    tmp_policy=/usr/sbin/policy-rc.d
  fi
  rc=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io >/dev/null; } \
    || rc=$?
  [ -n "$tmp_policy" ] && rm -f "$tmp_policy"
  [ $rc = 0 ] || die "apt-get install docker.io failed (exit $rc); run it by hand to see why"
fi
command -v dockerd >/dev/null || die "dockerd not found after installing docker.io"
command -v docker >/dev/null || die "no docker client on PATH (docker.io ships /usr/bin/docker)"

# A live dockerd (not a zombie: a daemon whose parent never reaped it still has a pid) that
# is still starting: wait for it, never start a second daemon over it.
running() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [ "${st%% *}" != Z ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dockerd ]
}
start_dockerd() {
  mkdir -p "$(dirname "$LOG")"
  echo "==== $(date -u +%FT%TZ) started by teamd-hitless scripts/docker_engine.sh" >>"$LOG"
  # a pid file of a dead or zombie daemon would make the new one refuse to start
  rm -f /var/run/docker.pid
  # setsid + nohup: the daemon survives the end of `make` and of the calling shell.
  setsid nohup dockerd --live-restore --bridge=none --iptables=false --ip-masq=false \
    --host "unix://$SOCK" >>"$LOG" 2>&1 </dev/null &
  pid=$!
  ours=1
}
ours=0
if [ -f /var/run/docker.pid ] && running "$(cat /var/run/docker.pid)"; then
  pid=$(cat /var/run/docker.pid)
  echo "docker: dockerd pid $pid exists but does not answer yet; waiting (limit ${WAIT_S} s)"
else
  start_dockerd
fi

start=$(date +%s.%N)
deadline=$(( $(date +%s) + WAIT_S ))
until answers; do
  if ! running "$pid" && [ $ours = 0 ]; then
    echo "docker: dockerd pid $pid went away without answering; starting one"
    start_dockerd
    continue
  fi
  if ! running "$pid"; then
    echo "docker: dockerd (pid $pid) exited before answering on $SOCK; last lines of $LOG:" >&2
    tail -n 25 "$LOG" >&2
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "docker: dockerd (pid $pid) does not answer on $SOCK after ${WAIT_S} s (left running);" \
         "last lines of $LOG:" >&2
    tail -n 25 "$LOG" >&2
    exit 1
  fi
  sleep 0.2
done
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "docker: engine started (dockerd pid $pid, log $LOG, answering after $took s)"
