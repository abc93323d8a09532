#include "backend/kvm/kvm_vcpu.h"

#include <signal.h>
#include <sys/mman.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "backend/kvm/x86_64/cpuid.h"
#include "arch/x86_64/msr.h"
#include "backend/kvm/kvm_hypervisor.h"
#include "common/hex.h"
#include "backend/kvm/kvm_vm.h"
#include "backend/kvm/x86_64/vcpu_state.h"

namespace vmrun::kvm {

// The signal that knocks a vCPU thread out of KVM_RUN. Its handler does nothing: the
// point is the EINTR. A real-time signal, so it never collides with Node's SIGUSR1.
static int kick_signal() { return SIGRTMIN + 4; }

static void install_kick_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(kick_signal(), &sa, nullptr);
  });
}

KvmVcpu::KvmVcpu(KvmHypervisor& hypervisor, KvmVm& vm, int index, int count, VcpuSetup setup)
    : hypervisor_(hypervisor), index_(index) {
  install_kick_handler();
  fd_ = Fd(checked_ioctl(vm.fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(index), "CREATE_VCPU"));
  run_size_ = hypervisor.vcpu_mmap_size();
  void* p = mmap(nullptr, run_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (p == MAP_FAILED) throw VmrunError(ErrorCode::Host, errno_message("cannot map the vCPU run area", errno));
  run_ = static_cast<kvm_run*>(p);
  set_boot_cpuid(count);
  if (setup == VcpuSetup::ForRestore) return;
  set_boot_msrs();
  set_boot_fpu();
  set_boot_lapic();
}

KvmVcpu::~KvmVcpu() {
  if (run_) munmap(run_, run_size_);
}

void KvmVcpu::set_boot_cpuid(int count) {
  std::vector<kvm_cpuid_entry2> entries = hypervisor_.supported_cpuid();
  patch_cpuid_for_vcpu(entries, index_, count);
  std::vector<uint8_t> buf(sizeof(kvm_cpuid2) + entries.size() * sizeof(kvm_cpuid_entry2));
  auto* c = reinterpret_cast<kvm_cpuid2*>(buf.data());
  c->nent = static_cast<uint32_t>(entries.size());
  std::memcpy(c->entries, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  checked_ioctl(fd_.get(), KVM_SET_CPUID2, c, "SET_CPUID2");
}

void KvmVcpu::set_boot_msrs() {
  const auto boot = x86::boot_msrs();
  std::vector<uint8_t> buf(sizeof(kvm_msrs) + boot.size() * sizeof(kvm_msr_entry));
  auto* m = reinterpret_cast<kvm_msrs*>(buf.data());
  m->nmsrs = static_cast<uint32_t>(boot.size());
  for (size_t i = 0; i < boot.size(); i++) {
    m->entries[i].index = boot[i].first;
    m->entries[i].data = boot[i].second;
  }
  int n = checked_ioctl(fd_.get(), KVM_SET_MSRS, m, "SET_MSRS");
  if (static_cast<size_t>(n) != boot.size())
    throw VmrunError(ErrorCode::Host, "KVM refused boot MSR " + hex(boot[n].first));
}

void KvmVcpu::set_boot_fpu() {
  kvm_fpu fpu{};
  fpu.fcw = 0x37F;     // x87 default control word
  fpu.mxcsr = 0x1F80;  // SSE exceptions masked
  checked_ioctl(fd_.get(), KVM_SET_FPU, &fpu, "SET_FPU");
}

void KvmVcpu::set_boot_lapic() {
  // LINT0 = ExtINT and LINT1 = NMI, as firmware leaves them: without this Linux's
  // PIT calibration can stall (see notes/nested-harness.md).
  kvm_lapic_state lapic{};
  checked_ioctl(fd_.get(), KVM_GET_LAPIC, &lapic, "GET_LAPIC");
  auto set_reg = [&](int offset, uint32_t value) { std::memcpy(&lapic.regs[offset], &value, 4); };
  auto get_reg = [&](int offset) {
    uint32_t v;
    std::memcpy(&v, &lapic.regs[offset], 4);
    return v;
  };
  constexpr int kLvtLint0 = 0x350, kLvtLint1 = 0x360;
  constexpr uint32_t kDeliveryModeMask = 0x700, kExtInt = 0x700, kNmi = 0x400;
  set_reg(kLvtLint0, (get_reg(kLvtLint0) & ~kDeliveryModeMask & ~(1u << 16)) | kExtInt);
  set_reg(kLvtLint1, (get_reg(kLvtLint1) & ~kDeliveryModeMask & ~(1u << 16)) | kNmi);
  checked_ioctl(fd_.get(), KVM_SET_LAPIC, &lapic, "SET_LAPIC");
}

static kvm_segment to_kvm(const x86::Segment& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.db;
  k.s = s.s;
  k.l = s.l;
  k.g = s.g;
  k.avl = s.avl;
  k.unusable = s.present ? 0 : 1;
  return k;
}

void KvmVcpu::set_start_state(const x86::StartState& st) {
  kvm_sregs sregs{};
  checked_ioctl(fd_.get(), KVM_GET_SREGS, &sregs, "GET_SREGS");
  sregs.cs = to_kvm(st.cs);
  sregs.ds = to_kvm(st.ds);
  sregs.es = to_kvm(st.es);
  sregs.fs = to_kvm(st.fs);
  sregs.gs = to_kvm(st.gs);
  sregs.ss = to_kvm(st.ss);
  if (st.tr.present) sregs.tr = to_kvm(st.tr);
  sregs.gdt.base = st.gdt_base;
  sregs.gdt.limit = st.gdt_limit;
  sregs.idt.base = st.idt_base;
  sregs.idt.limit = st.idt_limit;
  sregs.cr0 = st.cr0;
  sregs.cr3 = st.cr3;
  sregs.cr4 = st.cr4;
  sregs.efer = st.efer;
  checked_ioctl(fd_.get(), KVM_SET_SREGS, &sregs, "SET_SREGS");

  kvm_regs regs{};
  regs.rip = st.rip;
  regs.rsp = st.rsp;
  regs.rbp = st.rsp;
  regs.rsi = st.rsi;
  regs.rdi = st.rdi;
  regs.rflags = st.rflags;
  checked_ioctl(fd_.get(), KVM_SET_REGS, &regs, "SET_REGS");
  // With the in-kernel LAPIC, KVM parks every vCPU but the first until a startup IPI;
  // a vCPU given a start state (all Hermit vCPUs) runs from it at once.
  kvm_mp_state mp{KVM_MP_STATE_RUNNABLE};
  checked_ioctl(fd_.get(), KVM_SET_MP_STATE, &mp, "SET_MP_STATE");
}

x86::GeneralRegisters KvmVcpu::general_registers() {
  kvm_regs r{};
  checked_ioctl(fd_.get(), KVM_GET_REGS, &r, "GET_REGS");
  return {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags};
}

void KvmVcpu::set_general_registers(const x86::GeneralRegisters& g) {
  kvm_regs r{g.rax, g.rbx, g.rcx, g.rdx, g.rsi, g.rdi, g.rsp, g.rbp, g.r8, g.r9, g.r10, g.r11, g.r12, g.r13, g.r14, g.r15, g.rip, g.rflags};
  checked_ioctl(fd_.get(), KVM_SET_REGS, &r, "SET_REGS");
}

x86::PagingState KvmVcpu::paging_state() {
  kvm_sregs s{};
  checked_ioctl(fd_.get(), KVM_GET_SREGS, &s, "GET_SREGS");
  return {s.cr0, s.cr3, s.cr4, s.efer};
}

void KvmVcpu::bind_to_current_thread() {
  thread_ = pthread_self();
  bound_.store(true, std::memory_order_release);
}

void KvmVcpu::kick() {
  // immediate_exit covers the window before KVM_RUN; the signal covers being inside it.
  __atomic_store_n(&run_->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (bound_.load(std::memory_order_acquire)) pthread_kill(thread_, kick_signal());
}

void KvmVcpu::clear_kick() { __atomic_store_n(&run_->immediate_exit, 0, __ATOMIC_SEQ_CST); }

VcpuExit KvmVcpu::complete_pending_io() {
  // KVM completes an I/O exit at the start of the next KVM_RUN, before it looks at
  // immediate_exit; with immediate_exit set it then returns EINTR without entering the
  // guest (KVM's selftests and QEMU's cpu_synchronize_state do the same). The flag stays
  // set: the first run() after the pause returns Interrupted and clears it.
  __atomic_store_n(&run_->immediate_exit, 1, __ATOMIC_SEQ_CST);
  return run();
}

VcpuExit KvmVcpu::run() {
  if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) {
    if (errno == EINTR || errno == EAGAIN) {
      VcpuExit e;
      e.kind = VcpuExit::Kind::Interrupted;
      return e;
    }
    throw VmrunError(ErrorCode::Host, errno_message("KVM_RUN failed on vCPU " + std::to_string(index_), errno));
  }
  return translate_exit();
}

VcpuExit KvmVcpu::translate_exit() {
  VcpuExit e;
  e.raw_reason = run_->exit_reason;
  switch (run_->exit_reason) {
    case KVM_EXIT_IO:
      e.kind = VcpuExit::Kind::PortIo;
      e.port = run_->io.port;
      e.size = run_->io.size;
      e.count = run_->io.count;
      e.is_write = run_->io.direction == KVM_EXIT_IO_OUT;
      e.data = reinterpret_cast<uint8_t*>(run_) + run_->io.data_offset;
      break;
    case KVM_EXIT_MMIO:
      e.kind = VcpuExit::Kind::Mmio;
      e.address = run_->mmio.phys_addr;
      e.size = run_->mmio.len;
      e.is_write = run_->mmio.is_write;
      e.data = run_->mmio.data;
      break;
    case KVM_EXIT_HLT:
      e.kind = VcpuExit::Kind::Halt;
      break;
    case KVM_EXIT_SHUTDOWN:
      e.kind = VcpuExit::Kind::Shutdown;
      break;
    case KVM_EXIT_INTR:
      e.kind = VcpuExit::Kind::Interrupted;
      break;
    case KVM_EXIT_SYSTEM_EVENT:
      e.kind = run_->system_event.type == KVM_SYSTEM_EVENT_RESET ? VcpuExit::Kind::SystemReset : VcpuExit::Kind::SystemShutdown;
      break;
    case KVM_EXIT_FAIL_ENTRY:
      e.kind = VcpuExit::Kind::FailEntry;
      e.hardware_reason = run_->fail_entry.hardware_entry_failure_reason;
      break;
    case KVM_EXIT_INTERNAL_ERROR:
      e.suberror = run_->internal.suberror;
      if (run_->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
        e.kind = VcpuExit::Kind::EmulationFailure;
        // Newer KVMs append the failing instruction's bytes (flags bit 0).
        if (run_->emulation_failure.ndata >= 3 && (run_->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
          uint8_t n = run_->emulation_failure.insn_size;
          e.instruction_length = n > 15 ? 15 : n;
          std::memcpy(e.instruction, run_->emulation_failure.insn_bytes, e.instruction_length);
        }
      } else {
        e.kind = VcpuExit::Kind::InternalError;
      }
      break;
    default:
      e.kind = VcpuExit::Kind::Unknown;
  }
  return e;
}

StateBlob KvmVcpu::save_state() { return encode_vcpu_state(capture_vcpu_state(hypervisor_, fd_.get())); }

std::unique_ptr<LoadedVcpuState> KvmVcpu::load_state(const StateBlob& blob) { return load_vcpu_state(hypervisor_, fd_.get(), blob); }

void KvmVcpu::restore_state(const LoadedVcpuState& state) {
  apply_vcpu_state(hypervisor_, fd_.get(), dynamic_cast<const KvmLoadedVcpuState&>(state));
}

}  // namespace vmrun::kvm
