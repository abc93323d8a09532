/*
 * kvm-probe: proves that /dev/kvm runs unmodified guest code, SSE included.
 * Prints "api-version N", then runs a 16-bit real-mode guest that moves 42 into
 * xmm0, doubles it with paddd, and writes the low byte to port 0x10; prints
 * "sse-guest 84" when KVM ran it. On a host whose KVM only emulates guests (PVM
 * here) the SSE instructions end in KVM_EXIT_INTERNAL_ERROR, reported as such.
 * Exit status: 0 when everything worked, 1 otherwise.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUEST_MEM_SIZE 0x10000
#define GUEST_CODE_ADDR 0x1000
#define RESULT_PORT 0x10
#define CR4_OSFXSR (1u << 9)
#define CR4_OSXMMEXCPT (1u << 10)

static const unsigned char guest_code[] = {
    0x66, 0xb8, 0x2a, 0x00, 0x00, 0x00, /* mov eax, 42 */
    0x66, 0x0f, 0x6e, 0xc0,             /* movd xmm0, eax */
    0x66, 0x0f, 0xfe, 0xc0,             /* paddd xmm0, xmm0 */
    0x0f, 0x57, 0xc9,                   /* xorps xmm1, xmm1 */
    0x66, 0x0f, 0xfe, 0xc1,             /* paddd xmm0, xmm1 */
    0x66, 0x0f, 0x7e, 0xc0,             /* movd eax, xmm0 */
    0xe6, RESULT_PORT,                  /* out 0x10, al */
    0xf4,                               /* hlt */
};

static int fail(const char *what) {
  perror(what);
  return 1;
}

int main(void) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) return fail("open /dev/kvm");
  int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
  printf("api-version %d\n", api);
  if (api != KVM_API_VERSION) return 1;

  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) return fail("KVM_CREATE_VM");
  unsigned char *mem = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return fail("mmap guest memory");
  memcpy(mem + GUEST_CODE_ADDR, guest_code, sizeof guest_code);
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = 0, .memory_size = GUEST_MEM_SIZE, .userspace_addr = (unsigned long)mem};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) return fail("KVM_SET_USER_MEMORY_REGION");

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) return fail("KVM_CREATE_VCPU");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) return fail("mmap kvm_run");

  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return fail("KVM_GET_SREGS");
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  sregs.cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT; /* SSE is usable in real mode once enabled */
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) return fail("KVM_SET_SREGS");
  struct kvm_regs regs = {.rip = GUEST_CODE_ADDR, .rflags = 0x2};
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return fail("KVM_SET_REGS");

  int result = -1;
  for (int exits = 0; exits < 16; exits++) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) return fail("KVM_RUN");
    if (run->exit_reason == KVM_EXIT_IO && run->io.port == RESULT_PORT && run->io.direction == KVM_EXIT_IO_OUT) {
      result = *((unsigned char *)run + run->io.data_offset);
    } else if (run->exit_reason == KVM_EXIT_HLT) {
      printf("sse-guest %d\n", result);
      return result == 84 ? 0 : 1;
    } else if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
      printf("sse-guest internal-error suberror %u\n", run->internal.suberror);
      return 1;
    } else {
      printf("sse-guest unexpected-exit %u\n", run->exit_reason);
      return 1;
    }
  }
  printf("sse-guest no-halt\n");
  return 1;
}
