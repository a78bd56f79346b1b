#!/bin/busybox sh
# /init of the kernel-tier initramfs (see tests/kernel/vm.py). Runs as PID 1 under busybox.
#
# 1. mount proc/sys/dev, insmod the modules listed in /etc/vm-modules (dependency order);
# 2. mount the host root (9p tag "hostroot", read-only) at /newroot and the writable results
#    share (tag "results") at /results;
# 3. give the chroot fresh proc/sys/dev/devpts/shm and tmpfs on /tmp /run /var/tmp /var/log,
#    bind the results share onto its host path inside the chroot;
# 4. run /results/vm-command.sh in the chroot, write its exit code to /results/exit_code;
# 5. power off.
# Markers "@@vm: ...@@" on the console let the host runner time the boot.

export PATH=/bin
busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

uptime_s() { cut -d' ' -f1 /proc/uptime; }

fail() {
    echo "@@vm: init failed: $*@@"
    [ -d /results ] && echo "init: $*" >> /results/init_error 2>/dev/null
    sync
    poweroff -f
    echo o > /proc/sysrq-trigger
    sleep 10
}

echo 1 > /proc/sys/kernel/sysrq
echo "@@vm: init start $(uptime_s)@@"

while read -r mod args; do
    [ -n "$mod" ] || continue
    insmod "$mod" $args || fail "insmod $mod"
done < /etc/vm-modules

NINEP_RO="trans=virtio,version=9p2000.L,msize=${VM_MSIZE:-512000},cache=${VM_9P_CACHE:-loose},ro"
NINEP_RW="trans=virtio,version=9p2000.L,msize=${VM_MSIZE:-512000}"
mkdir -p /newroot /results
mount -t 9p -o "$NINEP_RW" results /results || fail "mount 9p results share"
[ -f /results/vm-init.env ] || fail "no /results/vm-init.env"
. /results/vm-init.env
mount -t 9p -o "$NINEP_RO" hostroot /newroot || fail "mount 9p host root"

R=/newroot
mount -t proc proc $R/proc || fail "mount proc in chroot"
mount -t sysfs sysfs $R/sys || fail "mount sysfs in chroot"
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
mount -t devtmpfs devtmpfs $R/dev || fail "mount devtmpfs in chroot"
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts $R/dev/pts
ln -sf pts/ptmx $R/dev/ptmx 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
for d in tmp run var/tmp var/log; do
    [ -d "$R/$d" ] && [ ! -L "$R/$d" ] || continue
    mount -t tmpfs -o mode=1777 tmpfs "$R/$d" || fail "mount tmpfs on /$d"
done
chmod 755 $R/run
mkdir -p $R/run/netns $R/run/teamd $R/run/lock $R/tmp/home
# The results share appears at its own host path inside the chroot (read-write).
if [ -n "$VM_RESULTS_DIR" ]; then
    mkdir -p "$R$VM_RESULTS_DIR" 2>/dev/null
    mount -o bind /results "$R$VM_RESULTS_DIR" || fail "bind results to $VM_RESULTS_DIR"
fi

ip link set lo up
hostname kernel-tier

echo "$(uptime_s)" > /results/guest_command_start
echo "@@vm: command start $(uptime_s)@@"
chroot $R /bin/sh "$VM_RESULTS_DIR/vm-command.sh" </dev/null
rc=$?
echo "$rc" > /results/exit_code
echo "@@vm: command exit $rc $(uptime_s)@@"
sync
poweroff -f
echo o > /proc/sysrq-trigger
sleep 10
