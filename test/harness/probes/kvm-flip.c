/*
 * kvm-flip: the probe behind docs/testing.md's L1 stall measurements. Creates and
 * destroys VMs (an in-kernel irqchip and one vCPU each) in a loop; with no other VM
 * alive (the harness's holder stopped first), each create and destroy flips L1's KVM
 * static keys, a code patch on every CPU, which under QEMU's multi-threaded TCG can
 * leave a stale INT3 that wedges L1.
 *   usage: kvm-flip [VMS] [PRINT-EVERY]   (defaults 1000, 25); prints progress lines
 *   "cycle N at S s", then "done N"; exit status 1 if KVM refuses a step.
 * In an L1, with the holder stopped (by its name, kvm-hold):
 *   cc -O2 -static -o /tmp/kvm-flip test/harness/probes/kvm-flip.c
 *   test/harness/nested-kvm -- sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = kvm-hold ] && kill ${p#/proc/}; done; sleep 1; /tmp/kvm-flip 2000'
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double seconds_since(const struct timespec *start) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

int main(int argc, char **argv) {
  long vms = argc > 1 ? atol(argv[1]) : 1000;
  long every = argc > 2 ? atol(argv[2]) : 25;
  if (vms < 1 || every < 1) {
    fprintf(stderr, "kvm-flip: VMS and PRINT-EVERY must be whole numbers from 1\n");
    return 125;
  }
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 1; i <= vms; i++) {
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) { perror("kvm-flip: open /dev/kvm"); return 1; }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0 || ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) { perror("kvm-flip: KVM_CREATE_VM/KVM_CREATE_IRQCHIP"); return 1; }
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) { perror("kvm-flip: KVM_CREATE_VCPU"); return 1; }
    close(vcpu);
    close(vm);
    close(kvm);
    if (i % every == 0) {
      printf("cycle %ld at %.1f s\n", i, seconds_since(&start));
      fflush(stdout);
    }
  }
  printf("done %ld\n", vms);
  return 0;
}
