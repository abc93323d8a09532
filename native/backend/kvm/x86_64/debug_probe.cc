// KvmHypervisor::probe_debug_traps(): which debug traps reach the VMM on this host.
// Hardware KVM reports int3 (with KVM_GUESTDBG_USE_SW_BP), DR0-DR3 execution
// breakpoints and the trap flag; KVM nested inside QEMU's software emulation (the
// test harness's L1) delivers int3 and DR breakpoints to the guest itself and only
// the trap flag to the VMM. A 16-bit guest of a few bytes tells them apart in well
// under a millisecond on hardware: its IVT sends #BP and #DB to code that writes to
// port 0x11, so a trap the VMM did not get shows up as that write.
#include <sys/mman.h>

#include <cstring>

#include "backend/kvm/kvm_hypervisor.h"

namespace vmrun::kvm {

namespace {

constexpr uint64_t kProbeMemory = 0x10000;
constexpr uint16_t kReachedGuestPort = 0x11;

struct ProbeVm {
  Fd vm, vcpu;
  uint8_t* mem = nullptr;
  kvm_run* run = nullptr;
  size_t run_size = 0;
  ~ProbeVm() {
    if (run) munmap(run, run_size);
    if (mem) munmap(mem, kProbeMemory);
  }
};

/** Runs from `rip` with `control` (and DR0 = `dr0`) until the first debug exit, port write or halt: true if a debug exit with `exception` came first. */
bool trap_reaches_vmm(ProbeVm& p, uint64_t rip, uint32_t control, uint64_t dr0, uint32_t exception) {
  kvm_sregs s{};
  checked_ioctl(p.vcpu.get(), KVM_GET_SREGS, &s, "GET_SREGS");
  s.cs.base = 0;
  s.cs.selector = 0;
  checked_ioctl(p.vcpu.get(), KVM_SET_SREGS, &s, "SET_SREGS");
  kvm_regs r{};
  r.rip = rip;
  r.rflags = 2;
  r.rsp = 0x8000;
  checked_ioctl(p.vcpu.get(), KVM_SET_REGS, &r, "SET_REGS");
  kvm_guest_debug d{};
  d.control = KVM_GUESTDBG_ENABLE | control;
  if (control & KVM_GUESTDBG_USE_HW_BP) {
    d.arch.debugreg[0] = dr0;
    d.arch.debugreg[7] = 0x402;  // G0, execute, one byte
  }
  checked_ioctl(p.vcpu.get(), KVM_SET_GUEST_DEBUG, &d, "SET_GUEST_DEBUG");
  bool reached = false;
  for (int exits = 0; exits < 8; exits++) {
    if (::ioctl(p.vcpu.get(), KVM_RUN, 0) < 0) break;
    if (p.run->exit_reason == KVM_EXIT_DEBUG) {
      reached = p.run->debug.arch.exception == exception;
      break;
    }
    if (p.run->exit_reason != KVM_EXIT_IO) break;  // halt, shutdown, failure: not reached
    if (p.run->io.port == kReachedGuestPort) break;
  }
  kvm_guest_debug off{};
  ::ioctl(p.vcpu.get(), KVM_SET_GUEST_DEBUG, &off);
  return reached;
}

}  // namespace

DebugTrapSupport KvmHypervisor::probe_debug_traps() {
  DebugTrapSupport out;
  try {
    ProbeVm p;
    p.vm = Fd(checked_ioctl(fd_.get(), KVM_CREATE_VM, 0UL, "CREATE_VM"));
    void* m = mmap(nullptr, kProbeMemory, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return out;
    p.mem = static_cast<uint8_t*>(m);
    // IVT: #DB (1) and #BP (3) go to 0000:1100, which writes to port 0x11.
    const uint8_t vector[4] = {0x00, 0x11, 0x00, 0x00};
    std::memcpy(p.mem + 1 * 4, vector, 4);
    std::memcpy(p.mem + 3 * 4, vector, 4);
    const uint8_t int3[] = {0xCC, 0xB0, 0x01, 0xE6, 0x10, 0xF4};            // 1000: int3; mov al,1; out 0x10,al; hlt
    const uint8_t reached_guest[] = {0xB0, 0x03, 0xE6, kReachedGuestPort, 0xF4};  // 1100: mov al,3; out 0x11,al; hlt
    const uint8_t nops[] = {0x90, 0x90, 0xB0, 0x01, 0xE6, 0x10, 0xF4};       // 1200: nop; nop; mov al,1; out 0x10,al; hlt
    std::memcpy(p.mem + 0x1000, int3, sizeof int3);
    std::memcpy(p.mem + 0x1100, reached_guest, sizeof reached_guest);
    std::memcpy(p.mem + 0x1200, nops, sizeof nops);
    ::ioctl(p.vm.get(), KVM_SET_TSS_ADDR, 0xFFFBD000UL);
    kvm_userspace_memory_region region{};
    region.memory_size = kProbeMemory;
    region.userspace_addr = reinterpret_cast<uint64_t>(p.mem);
    checked_ioctl(p.vm.get(), KVM_SET_USER_MEMORY_REGION, &region, "SET_USER_MEMORY_REGION");
    p.vcpu = Fd(checked_ioctl(p.vm.get(), KVM_CREATE_VCPU, 0UL, "CREATE_VCPU"));
    p.run_size = vcpu_mmap_size_;
    void* r = mmap(nullptr, p.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, p.vcpu.get(), 0);
    if (r == MAP_FAILED) return out;
    p.run = static_cast<kvm_run*>(r);
    out.single_step = trap_reaches_vmm(p, 0x1200, KVM_GUESTDBG_SINGLESTEP, 0, 1);
    out.hardware_breakpoints = trap_reaches_vmm(p, 0x1200, KVM_GUESTDBG_USE_HW_BP, 0x1201, 1);
    out.int3 = trap_reaches_vmm(p, 0x1000, KVM_GUESTDBG_USE_SW_BP, 0, 3);
  } catch (const VmrunError&) {
    // A host where the probe itself fails offers no debug traps.
  }
  return out;
}

}  // namespace vmrun::kvm
