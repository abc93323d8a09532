#!/bin/busybox sh
# /init of the arm64 test guest (test/arm64/*.test.ts): busybox only. Says it
# started, reports the CPUs online, then ends the VM: with vmrun_test.exit=N on the
# command line by writing N to vmrun's exit device (MMIO, arch/aarch64/layout.h),
# otherwise by powering off (PSCI SYSTEM_OFF). With vmrun_test.count=N it first
# prints N numbered lines about 0.5 s apart, or vmrun_test.period=S seconds (the
# snapshot test saves and restores it in the middle, the arm64 bench times the first
# line after a restore: bench/arm64.e2e.js), each with the guest's monotonic clock (/proc/uptime), the CPUs
# online and, with a second CPU, the clock read by a process pinned to CPU 1 (which
# would hang if that CPU stopped running). With vmrun_test.virtio=1 it lists the
# virtio-mmio devices its kernel found (below).
/bin/busybox mkdir -p /dev /proc /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
echo "vmrun-arm64-init: started"
read -r uptime _ </proc/uptime
echo "vmrun-arm64-init: uptime $uptime s, cpus online: $(/bin/busybox cat /sys/devices/system/cpu/online)"
count=0
period=0.5
virtio=""
for arg in $(/bin/busybox cat /proc/cmdline); do
  case "$arg" in
    vmrun_test.count=*) count="${arg#vmrun_test.count=}" ;;
    vmrun_test.period=*) period="${arg#vmrun_test.period=}" ;;
    vmrun_test.virtio=1) virtio=1 ;;
  esac
done
# With vmrun_test.virtio=1: load virtio-mmio's driver (a module in Debian's arm64
# kernel), which probes the device tree's virtio,mmio nodes, and list the device IDs
# it found there (vsock 0x0013, block 0x0002...).
if [ -n "$virtio" ]; then
  /bin/busybox insmod /lib/modules/virtio_mmio.ko
  ids=""
  for dev in /sys/bus/virtio/devices/*; do
    [ -e "$dev/device" ] && ids="$ids $(/bin/busybox cat "$dev/device")"
  done
  echo "vmrun-arm64-init: virtio devices:${ids:- none}"
fi
i=0
while [ "$i" -lt "$count" ]; do
  i=$((i + 1))
  read -r uptime _ </proc/uptime
  online=$(/bin/busybox cat /sys/devices/system/cpu/online)
  on_cpu1=-
  if [ "$online" != 0 ]; then
    on_cpu1=$(/bin/busybox taskset -c 1 /bin/busybox cat /proc/uptime)
    on_cpu1=${on_cpu1%% *}
  fi
  echo "vmrun-arm64-count $i uptime $uptime online $online cpu1-uptime $on_cpu1 end"
  /bin/busybox sleep "$period"
done
for arg in $(/bin/busybox cat /proc/cmdline); do
  case "$arg" in
    vmrun_test.exit=*) /bin/busybox devmem 0x09010000 32 "${arg#vmrun_test.exit=}" ;;
  esac
done
/bin/busybox poweroff -f
