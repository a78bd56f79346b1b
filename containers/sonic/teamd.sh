#!/bin/bash
# teamd.sh start|wait|stop for teamd-hitless on a SONiC switch (containers/sonic/README.md, hld
# §11.7). Same verbs and the same warm/fast/cold stop as SONiC's files/scripts/teamd.sh, which
# teamd.service runs as ExecStartPre=start, ExecStart=wait (its main process), ExecStop=stop.
#
# The shape: the container SONiC knows as `teamd` is long-lived and never replaced by a
# handover. It runs the supervisor (`warm-restart supervise --runtime docker`). The LACP shim
# runs in the containers the handovers move between, base name `teamd-lacp` (renamed
# `teamd-lacp_bak` during a handover; the supervisor's hot standby is `teamd-lacp_standby`).
# So `wait` (SONiC: `container wait teamd`, bound to the container it started) sees no
# handover, and `docker exec teamd teamdctl <lag> state dump` runs in `teamd`, which shares the
# control-socket directory with the shims.
#
# Settings (environment, or the file $TEAMD_HITLESS_ENV_FILE, default /etc/default/teamd-hitless):
#   TEAMD_HITLESS_IMAGE       image of both containers        teamd-hitless/teamd:latest
#   TEAMD_HITLESS_SUPERVISOR  the long-lived container         teamd
#   TEAMD_HITLESS_CONTAINER   the shim containers' base name   teamd-lacp
#   TEAMD_HITLESS_NET         the shims' --network             host
#   TEAMD_HITLESS_REDIS_DIR   the Redis socket's directory     /var/run/redis (same path inside)
#   TEAMD_HITLESS_REDIS_SOCK  the Redis socket                 $TEAMD_HITLESS_REDIS_DIR/redis.sock
#   TEAMD_HITLESS_CTL_DIR     host dir of the control sockets  /run/teamd-shim (0750, root)
#   TEAMD_HITLESS_WARMBOOT    host warm-boot dir (teamd's -L)  /host/warmboot (as SONiC's teamd)
#   TEAMD_HITLESS_RUN_OPTS    more `docker create` options for the shim container (word-split)
#   SONIC_DB_CLI              sonic-db-cli                     sonic-db-cli
set -uo pipefail

ENV_FILE=${TEAMD_HITLESS_ENV_FILE:-/etc/default/teamd-hitless}
# shellcheck disable=SC1090
[ -r "$ENV_FILE" ] && . "$ENV_FILE"

IMAGE=${TEAMD_HITLESS_IMAGE:-teamd-hitless/teamd:latest}
SUP=${TEAMD_HITLESS_SUPERVISOR:-teamd}
LACP=${TEAMD_HITLESS_CONTAINER:-teamd-lacp}
NET=${TEAMD_HITLESS_NET:-host}
REDIS_DIR=${TEAMD_HITLESS_REDIS_DIR:-/var/run/redis}
REDIS_SOCK=${TEAMD_HITLESS_REDIS_SOCK:-$REDIS_DIR/redis.sock}
CTL_DIR=${TEAMD_HITLESS_CTL_DIR:-/run/teamd-shim}
WARMBOOT_DIR=${TEAMD_HITLESS_WARMBOOT:-/host/warmboot}
SHIM_CTL_DIR=/run/teamd-shim # the shim's default --ctl-dir, inside its container
RUN_OPTS=${TEAMD_HITLESS_RUN_OPTS:-}
SONIC_DB_CLI=${SONIC_DB_CLI:-sonic-db-cli}
DEBUG_LOG=${TEAMD_HITLESS_DEBUG_LOG:-/tmp/teamd-debug.log}
# SONiC's sonic-ctrmgrd `container` start|stop|wait (it keeps STATE_DB FEATURE|teamd current);
# plain docker where it is absent
CTRMGR=/usr/local/bin/container
[ -x "$CTRMGR" ] || CTRMGR=""
YIELD_LIMIT_S=3 # how long a warm/fast stop waits for the shim's final snapshot

debug() {
    command -v logger >/dev/null && logger -t teamd.sh "$1"
    echo "$(date) - $1" >>"$DEBUG_LOG" 2>/dev/null
    echo "teamd.sh: $1"
}

db() { $SONIC_DB_CLI "$@" 2>/dev/null; }

check_warm_boot() {
    # SONiC's rule: the system's or the service's warm-restart flag
    WARM_BOOT=false
    if [ "$(db STATE_DB HGET 'WARM_RESTART_ENABLE_TABLE|system' enable)" = true ] ||
        [ "$(db STATE_DB HGET 'WARM_RESTART_ENABLE_TABLE|teamd' enable)" = true ]; then
        WARM_BOOT=true
    fi
}

check_fast_boot() {
    FAST_BOOT=false
    [ "$(db STATE_DB HGET 'FAST_RESTART_ENABLE_TABLE|system' enable)" = true ] && FAST_BOOT=true
}

exists() { docker inspect --type container "$1" >/dev/null 2>&1; }
# "<role label> <first word of Cmd>" of a container: ours are `teamd teamd-shim` (a shim) and
# `teamd warm-restart` (the supervisor)
what() {
    docker inspect --type container -f '{{index .Config.Labels "teamd-hitless.role"}} {{index .Config.Cmd 0}}' "$1" 2>/dev/null
}
# refuse to start (or stop) a container of that name that is not ours: SONiC's stock `teamd`
refuse_foreign() {
    local name=$1 want=$2 got
    exists "$name" || return 0
    got=$(what "$name")
    [ "$got" = "teamd $want" ] && return 0
    debug "a container $name exists that is not teamd-hitless's (label and command: '${got}', want 'teamd $want'): SONiC's stock teamd? Remove it (docker rm -f $name) and start again; nothing was changed"
    exit 5
}
running() { [ "$(docker inspect --type container -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

create_shim() {
    # SONiC's docker create options that matter to LACP (-t, the host network, the Redis
    # socket's directory, the log size) plus the product's least privilege (containers/README.md):
    # NET_ADMIN + NET_RAW only, no new privileges, a read-only root with the health file on a
    # tmpfs. `--cgroupns=host`: the shim names its container in its record from /proc/self/cgroup
    # (with cgroup v2 a private cgroup namespace hides the id, and a supervisor in a container
    # cannot find the shim by its pid namespace). No restart policy: the supervisor is the one
    # restarter (hld §14.4).
    # shellcheck disable=SC2086
    docker create --name "$LACP" --net="$NET" -t \
        --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW \
        --security-opt no-new-privileges:true --read-only \
        --tmpfs /run/teamd-health:size=64k,mode=0700 \
        --cgroupns=host \
        -v "$REDIS_DIR:$REDIS_DIR:rw" -v "$CTL_DIR:$SHIM_CTL_DIR:rw" \
        -v "$WARMBOOT_DIR:/var/warmboot:rw" \
        --log-opt max-size=2M --log-opt max-file=5 \
        $RUN_OPTS \
        "$IMAGE" teamd-shim --redis "unix://$REDIS_SOCK" \
        --warmboot-dir /var/warmboot/teamd >/dev/null
}

create_supervisor() {
    # The supervisor talks to the Docker engine (its socket: root on this host), Redis and the
    # shims' control sockets; it needs no network and no capability. The control directory is
    # mounted at its host path (the docker runtime maps a shim's socket to the host path
    # through the shim container's mounts) and at the shim's path, where teamdctl looks.
    local ctl_mounts=(-v "$CTL_DIR:$CTL_DIR:rw")
    [ "$CTL_DIR" = "$SHIM_CTL_DIR" ] || ctl_mounts+=(-v "$CTL_DIR:$SHIM_CTL_DIR:rw")
    docker create --name "$SUP" --net=none \
        --cap-drop ALL --security-opt no-new-privileges:true --read-only --no-healthcheck \
        -v /var/run/docker.sock:/var/run/docker.sock \
        -v "$REDIS_DIR:$REDIS_DIR:rw" "${ctl_mounts[@]}" \
        -e "TEAMD_SHIM_REDIS=unix://$REDIS_SOCK" -e "TEAMD_HITLESS_CONTAINER=$LACP" \
        --log-opt max-size=2M --log-opt max-file=5 \
        "$IMAGE" warm-restart supervise --runtime docker >/dev/null
}

start_container() {
    if [ -n "$CTRMGR" ]; then "$CTRMGR" start "$1"; else docker start "$1" >/dev/null; fi
}

start() {
    debug "Starting teamd (teamd-hitless: supervisor $SUP, shim $LACP)..."
    check_warm_boot
    check_fast_boot
    debug "Warm boot flag: teamd ${WARM_BOOT}. Fast boot flag: teamd ${FAST_BOOT}."
    refuse_foreign "$SUP" warm-restart
    refuse_foreign "$LACP" teamd-shim
    mkdir -p -m 0750 "$CTL_DIR"
    if running "$LACP"; then
        debug "$LACP runs already and keeps the LAGs"
    else
        exists "$LACP" || create_shim || { debug "docker create $LACP failed"; exit 4; }
        docker start "$LACP" >/dev/null || { debug "docker start $LACP failed"; exit 4; }
        # the supervisor adopts what runs: start it once the shim is the owner (healthy by the
        # image's healthcheck), or it would find no owner and cold-start one itself
        for _ in $(seq 1 120); do
            [ "$(docker inspect -f '{{.State.Health.Status}}' "$LACP" 2>/dev/null)" = healthy ] && break
            running "$LACP" || { debug "$LACP exited at start: $(docker logs --tail 5 "$LACP" 2>&1)"; exit 4; }
            sleep 0.5
        done
    fi
    if ! running "$SUP"; then
        exists "$SUP" || create_supervisor || { debug "docker create $SUP failed"; exit 4; }
        start_container "$SUP" || { debug "starting $SUP failed"; exit 4; }
    fi
    debug "Started teamd."
}

wait() {
    # the service's main process: bound to the long-lived supervisor container
    if [ -n "$CTRMGR" ]; then exec "$CTRMGR" wait "$SUP"; fi
    exec docker wait "$SUP"
}

# The shim's answer to SIGUSR1 is teamd's: one LACPDU now on every member, then it stops
# transmitting and writes its final snapshot (STATE_DB TEAMD_SHIM_FINAL|<name>); nothing is
# removed from the kernel or the DBs. Unlike teamd it then waits for a successor (and resumes
# after 0.75 s without one) instead of exiting, so "wait until it has exited" becomes "wait
# until the final snapshot is written", and then the container is killed, as SONiC kills teamd's.
warm_stop_one() {
    local ctr=$1 owner before now i
    owner=$(db STATE_DB HGET 'TEAMD_OWNER_TABLE|teamd' owner)
    before=$(db STATE_DB HGET "TEAMD_SHIM_FINAL|$owner" _meta)
    docker kill -s SIGUSR1 "$ctr" >/dev/null || return 0
    for i in $(seq 1 $((YIELD_LIMIT_S * 20))); do
        now=$(db STATE_DB HGET "TEAMD_SHIM_FINAL|$owner" _meta)
        if [ -n "$now" ] && [ "$now" != "$before" ]; then
            debug "$ctr: $owner yielded (final snapshot written, last PDU sent on every member)"
            break
        fi
        [ "$i" = $((YIELD_LIMIT_S * 20)) ] &&
            debug "$ctr: no final snapshot of ${owner:-?} within ${YIELD_LIMIT_S} s; killed anyway"
        sleep 0.05
    done
    docker kill "$ctr" >/dev/null 2>&1 || debug "$ctr is not running"
}

fast_stop_one() {
    local ctr=$1 i
    docker kill -s SIGUSR2 "$ctr" >/dev/null || return 0
    for i in $(seq 1 $((YIELD_LIMIT_S * 20))); do
        running "$ctr" || { debug "$ctr: shim exited (fast-reboot)"; break; }
        sleep 0.05
    done
    docker kill "$ctr" >/dev/null 2>&1 || true
}

stop() {
    debug "Stopping teamd (teamd-hitless)..."
    if [ -n "${EXIT_CODE:-}" ]; then
        # systemd sets EXIT_CODE for ExecStop only once the main process (wait) has ended: the
        # supervisor container ended by itself, nobody asked to stop teamd. The shims keep the
        # LAGs; teamd.service's Restart= (FEATURE auto_restart) starts a supervisor that adopts them.
        debug "$SUP ended by itself ($EXIT_CODE ${EXIT_STATUS:-}): $LACP keeps the LAGs"
        return 0
    fi
    refuse_foreign "$SUP" warm-restart
    check_warm_boot
    check_fast_boot
    debug "Warm boot flag: teamd ${WARM_BOOT}. Fast boot flag: teamd ${FAST_BOOT}."
    # 1. the supervisor first (SIGTERM leaves the shims running): it must not start, promote
    #    or cold-start anything while they stop
    if running "$SUP"; then
        if [ -n "$CTRMGR" ]; then "$CTRMGR" stop "$SUP"; else docker stop -t 10 "$SUP" >/dev/null; fi
    fi
    # 2. hot standbys send and write nothing, so removing them is invisible; left running, one
    #    would take the owner's exit below for a death and take the LAGs over
    docker rm -f "${LACP}_standby" >/dev/null 2>&1 || true
    # 3. the owner (and a handover's teamd-lacp_bak, if one was interrupted)
    for ctr in "$LACP" "${LACP}_bak"; do
        running "$ctr" || continue
        if [ "$FAST_BOOT" = true ]; then
            # teamd's fast-reboot exit: one PDU on every member, then the shim exits keeping
            # every LAG, netdev and DB entry (SONiC's stop polls until teamd is gone, then kills)
            fast_stop_one "$ctr"
        elif [ "$WARM_BOOT" = true ]; then
            warm_stop_one "$ctr"
        else
            # cold: SIGTERM, the shim removes every LAG as teamd does; 60 s as SONiC gives teamd
            docker stop -t 60 "$ctr" >/dev/null
        fi
    done
    debug "Stopped teamd."
}

case "${1:-}" in
start | wait | stop)
    "$1"
    ;;
*)
    echo "Usage: $0 {start|wait|stop}"
    exit 1
    ;;
esac
