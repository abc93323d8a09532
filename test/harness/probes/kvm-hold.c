/*
 * kvm-hold: keeps one KVM VM (in-kernel irqchip, one vCPU that never runs) open in L1
 * for the whole command. It returns once the VM is held (exit status 0), leaving a
 * child process that holds it until L1 ends, with its standard streams closed; exit
 * status 1, with a line on stderr, if it could not hold one.
 *
 * Why: creating and destroying a VM flips static keys in L1's kernel whose use count
 * falls to 0 with the last VM: preempt_notifier_key (KVM registers preempt notifiers
 * per VM; its branch is in __schedule) and the LAPIC's apic_sw_disabled (one count per
 * vCPU until its guest enables the APIC). Each flip rewrites kernel text through INT3
 * patching (text_poke_bp). Under QEMU's multi-threaded TCG a vCPU can go on running a
 * translation of the patched code that still holds the INT3 after the patch has
 * removed it; the kernel's INT3 handler then finds no INT3 in memory, sends the vCPU
 * back to the same address, and it traps again, forever, with the runqueue lock held
 * (docs/testing.md, "The L1 stall explained: a stale INT3"). With this VM held, the
 * counts never fall to 0, so the test VMs that come and go patch nothing.
 *
 * The holder's own VM flips those keys once. It is created while every other CPU is
 * offline, so no other vCPU thread of QEMU can race the patch's writes; they come
 * back online as soon as it exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

enum { kMaxCpus = 256 };

/* Writes "0" or "1" to cpuN/online; returns 0 or an errno. */
static int set_cpu_online(int cpu, int online) {
  char path[64];
  snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/online", cpu);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = write(fd, online ? "1" : "0", 1) == 1 ? 0 : errno;
  close(fd);
  return err;
}

static int cpu_is_online(int cpu) {
  char path[64], state = '0';
  snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/online", cpu);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0; /* no such CPU, or one that cannot go offline (no file) */
  int n = read(fd, &state, 1);
  close(fd);
  return n == 1 && state == '1';
}

/* Takes every online CPU but the first offline; records which in `taken`. */
static void take_other_cpus_offline(int taken[kMaxCpus]) {
  for (int cpu = 1; cpu < kMaxCpus; cpu++) {
    taken[cpu] = 0;
    if (!cpu_is_online(cpu)) continue;
    int err = set_cpu_online(cpu, 0);
    if (err) {
      fprintf(stderr, "kvm-hold: cannot take cpu%d offline (%s); its VM flips L1's static keys with it running\n", cpu, strerror(err));
      continue;
    }
    taken[cpu] = 1;
  }
}

static void bring_cpus_back(const int taken[kMaxCpus]) {
  for (int cpu = 1; cpu < kMaxCpus; cpu++) {
    if (!taken[cpu]) continue;
    int err = set_cpu_online(cpu, 1);
    if (err) fprintf(stderr, "kvm-hold: cannot bring cpu%d back online (%s)\n", cpu, strerror(err));
  }
}

static int create_held_vm(void) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) {
    perror("kvm-hold: /dev/kvm");
    return -1;
  }
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0 || ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0 || ioctl(vm, KVM_CREATE_VCPU, 0) < 0) {
    perror("kvm-hold: cannot create the VM it holds");
    return -1;
  }
  return 0;
}

int main(void) {
  int ready[2];
  if (pipe(ready) < 0) {
    perror("kvm-hold: pipe");
    return 1;
  }
  pid_t holder = fork();
  if (holder < 0) {
    perror("kvm-hold: fork");
    return 1;
  }
  if (holder > 0) {
    /* One byte once the VM is held; end of file if the holder failed. */
    close(ready[1]);
    char byte;
    return read(ready[0], &byte, 1) == 1 ? 0 : 1;
  }
  close(ready[0]);
  static int taken[kMaxCpus];
  take_other_cpus_offline(taken);
  int held = create_held_vm();
  bring_cpus_back(taken);
  if (held < 0) return 1;
  if (write(ready[1], "1", 1) != 1) return 1;
  close(ready[1]);
  /* Whoever reads the holder's output (L1's init) must see its end now, not at L1's. */
  close(STDIN_FILENO);
  close(STDOUT_FILENO);
  close(STDERR_FILENO);
  for (;;) pause();
}
