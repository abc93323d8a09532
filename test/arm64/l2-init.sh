#!/bin/busybox sh
# /init of the arm64 test guest (test/arm64/boot.test.ts): busybox only. Says it
# started, reports the CPUs online, then ends the VM: with vmrun_test.exit=N on the
# command line by writing N to vmrun's exit device (MMIO, arch/aarch64/layout.h),
# otherwise by powering off (PSCI SYSTEM_OFF).
/bin/busybox mkdir -p /dev /proc /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
echo "vmrun-arm64-init: started"
read -r uptime _ </proc/uptime
echo "vmrun-arm64-init: uptime $uptime s, cpus online: $(/bin/busybox cat /sys/devices/system/cpu/online)"
for arg in $(/bin/busybox cat /proc/cmdline); do
  case "$arg" in
    vmrun_test.exit=*) /bin/busybox devmem 0x09010000 32 "${arg#vmrun_test.exit=}" ;;
  esac
done
/bin/busybox poweroff -f
