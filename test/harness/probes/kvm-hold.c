/*
 * kvm-hold: keeps one KVM VM (in-kernel irqchip, one vCPU that never runs) open in L1
 * for the whole command, then waits to be killed with L1.
 *
 * Why: creating and destroying a VM flips static keys in L1's kernel whose use count
 * falls to 0 with the last VM: preempt_notifier_key (KVM registers preempt notifiers
 * per VM; its branch is in __schedule) and the LAPIC's apic_hw_disabled and
 * apic_sw_disabled (one count per vCPU until its guest enables the APIC). Each flip
 * rewrites kernel text through INT3 patching (text_poke_bp) while other CPUs run it,
 * and under QEMU's TCG that has wedged L1 with every vCPU spinning in exc_int3 at
 * __schedule+0x2ab (docs/testing.md, "The L1 stall of issue 16"). With this VM held,
 * the counts never fall to 0, so the test VMs that come and go patch nothing.
 * Exit status 1 (with a line on stderr) if it could not hold a VM.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) {
    perror("kvm-hold: /dev/kvm");
    return 1;
  }
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0 || ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0 || ioctl(vm, KVM_CREATE_VCPU, 0) < 0) {
    perror("kvm-hold: cannot create the VM it holds");
    return 1;
  }
  for (;;) pause();
}
