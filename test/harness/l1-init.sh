#!/bin/busybox sh
# /init of the nested-KVM harness's L1 Linux (runs from the initramfs, busybox only).
# Loads the modules listed in /etc/harness-modules (dependency order), mounts the
# host's / over 9p at /host, gives it /proc, /sys, /dev, loads KVM, then runs the
# host-generated job script with the host's tree as its root (moved onto / in a
# mount namespace of its own) and records its exit status in the job directory.
# Progress goes to the console as "nested-kvm-init: ..."
# lines, which the host side reads to time the phases and to report failures.

# The initramfs has no /dev/console (making one needs root), so the kernel started
# us without stdio: get it from devtmpfs before anything can fail.
/bin/busybox mkdir -p /dev
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin /proc /sys /host
/bin/busybox --install -s
export PATH=/bin:/sbin

say() { echo "nested-kvm-init: $*" >/dev/console; }
# Every failure ends L1 at once with one line saying what failed; the host prints it
# with the console tail and exits 125.
fail() {
  say "FAILED: $*"
  sync
  poweroff -f
}

mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
# The uptime lets the host split its boot time into firmware+decompression and kernel.
read -r uptime _ </proc/uptime
say "init started, uptime $uptime"

job=""
heartbeat_s=""
image_dir=""
wedge_after_s=""
no_heartbeat_port=""
root_mode="host"
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    nested_kvm.job=*) job="${arg#nested_kvm.job=}" ;;
    nested_kvm.heartbeat=*) heartbeat_s="${arg#nested_kvm.heartbeat=}" ;;
    nested_kvm.image=*) image_dir="${arg#nested_kvm.image=}" ;;
    nested_kvm.wedge=*) wedge_after_s="${arg#nested_kvm.wedge=}" ;;
    nested_kvm.no_heartbeat_port=1) no_heartbeat_port=1 ;;
    nested_kvm.root=l1) root_mode="l1" ;;
  esac
done
[ -n "$job" ] || fail "no nested_kvm.job= on the kernel command line"

while read -r module; do
  [ -n "$module" ] || continue
  insmod "/lib/modules/$module" || fail "insmod $module"
done </etc/harness-modules
[ -c /dev/kvm ] || fail "KVM modules loaded but /dev/kvm is missing (x86: does -cpu max show svm? arm64: virtualization=on?)"
# The command may run as the caller's (non-root) uid, like on a host with a kvm group.
chmod 0666 /dev/kvm

# msize: 9p's largest message. cache=loose keeps what L1 read in its page cache
# (measured: node's start 5.7 s -> 2.6 s, gcc on a small file 10 s -> 2.9 s) and is
# safe here because nothing on the host changes these files while L1 runs. It also
# makes writes write-back: they reach the host when L1's flusher gets to them (up to
# 30 s later, one 4 KiB page per 9p request) or at sync.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose host /host ||
  fail "mount the host's / over 9p (virtio-9p device missing?)"
# The job directory (run.sh, the command's stdout/stderr, its exit status) is its own
# 9p export without a cache: what the command prints reaches the host as it is
# written, not at the next write-back.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 job "/host$job" ||
  fail "mount the job directory $job over 9p"
[ -f "/host$job/run.sh" ] || fail "job script /host$job/run.sh not visible over 9p"

# The host's /proc, /sys and /dev as QEMU sees them must not leak into L1.
mount -t proc proc /host/proc || fail "mount /host/proc"
mount -t sysfs sysfs /host/sys || fail "mount /host/sys"
# KVM's record of how an L2 guest died: a triple fault on AMD leaves vmrun only the
# reset registers, so the shutdown exit (SVM exit code 0x7f) with the guest's RIP, and
# the exceptions KVM injected before it, stay in the trace buffer for the e2e failure
# report (test/e2e/helpers/vm-report.ts). Both events are rare in a healthy guest.
trace=/host/sys/kernel/tracing
if [ "$(uname -m)" = x86_64 ] && mount -t tracefs tracefs "$trace" 2>/dev/null && [ -d "$trace/events/kvm/kvm_exit" ]; then
  echo 256 >"$trace/buffer_size_kb"
  echo 'exit_reason == 127' >"$trace/events/kvm/kvm_exit/filter" &&
    echo 1 >"$trace/events/kvm/kvm_exit/enable" &&
    echo 1 >"$trace/events/kvm/kvm_inj_exception/enable" ||
    say "warning: could not enable KVM's shutdown trace"
fi
mount -o bind /dev /host/dev || fail "bind /dev into /host"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts || fail "mount devpts"
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm || fail "mount /dev/shm"
# Unix sockets cannot live on 9p (connect() fails with ENXIO), so L1 gets its own
# /run, as a freshly booted system would; run.sh puts XDG_RUNTIME_DIR in it.
mount -t tmpfs -o mode=0755 tmpfs /host/run || fail "mount /run"
ip link set lo up || say "warning: could not bring up lo"

# root=l1 (an aarch64 L1: the host's programs are x86 binaries): the command runs in
# L1's own busybox root instead of chroot-ed into the host's, with the host's data
# directories bound at their usual paths (the job directory's own mount comes along
# with rbind) and L1's /proc, /sys, /dev, /run as they are.
root="/host"
if [ "$root_mode" = l1 ]; then
  root="/"
  for dir in /host/*; do
    name="${dir#/host/}"
    case "$name" in bin | sbin | lib | lib32 | lib64 | libx32 | usr | etc | proc | sys | dev | run | host | init) continue ;; esac
    [ -d "$dir" ] && [ ! -L "$dir" ] || continue
    mkdir -p "/$name" && mount -o rbind "$dir" "/$name" || fail "bind the host's /$name"
  done
  mkdir -p /run /dev/pts /dev/shm
  mount -t tmpfs -o mode=0755 tmpfs /run || fail "mount /run"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts || fail "mount devpts"
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm || fail "mount /dev/shm"
fi

# The heartbeat (test/harness/l1-heartbeat.js): uptime and per-CPU times on the second
# serial port every few seconds, with shell built-ins and /proc only (no 9p), so it
# stops only when L1's user space gets no time. Magic sysrq stays enabled
# (sysrq_always_enabled) for the host's stall report.
heartbeat() {
  while :; do
    line=""
    while read -r name times; do
      case "$name" in cpu[0-9]*) line="$line $name $times" ;; esac
    done </proc/stat
    read -r uptime _ </proc/uptime
    echo "nested-kvm-heartbeat $uptime$line"
    sleep "$heartbeat_s"
  done >/dev/ttyS1 2>/dev/null
}

# Test hook (NESTED_KVM_TEST_WEDGE_AFTER_S on the host): after that many seconds,
# wedge L1 the way the stalls seen in CI looked from outside: every vCPU busy, the
# command and the heartbeat getting no time. A busy loop pinned to each CPU, then
# every other user process frozen (cgroup v2 freezer); the kernel still takes
# interrupts, so sysrq works.
wedge() {
  sleep "$wedge_after_s"
  say "test hook: wedging L1 now"
  mount -t cgroup2 cgroup2 /sys/fs/cgroup && mkdir /sys/fs/cgroup/wedged || return
  spinners=""
  cpu=0
  while [ "$cpu" -lt "$(nproc)" ]; do
    taskset -c "$cpu" sh -c 'while :; do :; done' &
    spinners="$spinners $!"
    cpu=$((cpu + 1))
  done
  # Every process but init and the spinners (kernel threads refuse to move).
  for dir in /proc/[0-9]*; do
    pid="${dir#/proc/}"
    case " $$ $spinners " in *" $pid "*) continue ;; esac
    echo "$pid" >/sys/fs/cgroup/wedged/cgroup.procs 2>/dev/null
  done
  echo 1 >/sys/fs/cgroup/wedged/cgroup.freeze
}

# The kernel's text symbols, once per image, for the host's stall reports (nokaslr
# keeps them valid for every boot); in the background (about 5 s of CPU).
save_kernel_symbols() {
  tmp="/host$image_dir/kallsyms.tmp-$(cat /proc/sys/kernel/random/uuid)"
  grep -E '^[0-9a-f]+ [tTwW] [^[:space:]]+$' /proc/kallsyms >"$tmp" &&
    mv "$tmp" "/host$image_dir/kallsyms" || rm -f "$tmp"
}

say "kvm-ready"
if [ -n "$image_dir" ] && [ ! -s "/host$image_dir/kallsyms" ]; then save_kernel_symbols & fi
if [ -n "$heartbeat_s" ] && [ -z "$no_heartbeat_port" ]; then heartbeat & fi
# The KVM holder (probes/kvm-hold.c, built by the harness into the job directory;
# x86_64 only): its VM, held for L1's whole life, keeps KVM's static keys from
# flipping as the command's VMs come and go. It returns once the VM is held, with the
# heartbeat already running, so a stall in its own flip is caught like any other.
# What it says becomes progress lines, which the harness prints.
if [ -x "/host$job/kvm-hold" ]; then
  { "/host$job/kvm-hold" </dev/null 2>&1 ||
      echo "kvm-hold failed: L1's KVM static keys will flip with every VM, which has stalled L1 under TCG"; } |
    while IFS= read -r line; do say "$line"; done
fi
if [ -n "$wedge_after_s" ]; then wedge & fi
say "command-start"
if [ "$root_mode" = l1 ]; then
  chroot "$root" /bin/sh "$job/run.sh"
else
  # The command's root is the host's tree moved onto / in a mount namespace of its own
  # (switch_root's way), not a chroot into /host: the kernel refuses user namespaces
  # to a chroot-ed process, and vmrun's volumes run virtiofsd in one. Init keeps its
  # own namespace, where the job directory stays at /host$job.
  unshare -m --propagation private /bin/sh -c 'cd /host && mount -o move . / && exec chroot . /bin/sh "$1/run.sh"' sh "$job"
fi
status=$?
echo "$status" >"/host$job/status" || fail "write the exit status to $job/status"
sync
say "command-exit $status"
poweroff -f
