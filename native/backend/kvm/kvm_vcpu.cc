#include "backend/kvm/kvm_vcpu.h"

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

KvmVcpu::KvmVcpu(KvmHypervisor& hypervisor, KvmVm& vm, int index, int count, VcpuSetup setup)
    : hypervisor_(hypervisor), index_(index), area_(vm.fd(), index, hypervisor.vcpu_mmap_size()) {
  set_boot_cpuid(count);
  if (setup == VcpuSetup::ForRestore) return;
  set_boot_msrs();
  set_boot_fpu();
  set_boot_lapic();
}

void KvmVcpu::set_boot_cpuid(int count) {
  std::vector<kvm_cpuid_entry2> entries = hypervisor_.supported_cpuid();
  patch_cpuid_for_vcpu(entries, index_, count);
  std::vector<uint8_t> buf(sizeof(kvm_cpuid2) + entries.size() * sizeof(kvm_cpuid_entry2));
  auto* c = reinterpret_cast<kvm_cpuid2*>(buf.data());
  c->nent = static_cast<uint32_t>(entries.size());
  std::memcpy(c->entries, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  checked_ioctl(area_.fd(), KVM_SET_CPUID2, c, "SET_CPUID2");
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
  int n = checked_ioctl(area_.fd(), KVM_SET_MSRS, m, "SET_MSRS");
  if (static_cast<size_t>(n) != boot.size())
    throw VmrunError(ErrorCode::Host, "KVM refused boot MSR " + hex(boot[n].first));
}

void KvmVcpu::set_boot_fpu() {
  kvm_fpu fpu{};
  fpu.fcw = 0x37F;     // x87 default control word
  fpu.mxcsr = 0x1F80;  // SSE exceptions masked
  checked_ioctl(area_.fd(), KVM_SET_FPU, &fpu, "SET_FPU");
}

void KvmVcpu::set_boot_lapic() {
  // LINT0 = ExtINT and LINT1 = NMI, as firmware leaves them: without this Linux's
  // PIT calibration can stall (see notes/nested-harness.md).
  kvm_lapic_state lapic{};
  checked_ioctl(area_.fd(), KVM_GET_LAPIC, &lapic, "GET_LAPIC");
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
  checked_ioctl(area_.fd(), KVM_SET_LAPIC, &lapic, "SET_LAPIC");
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
  checked_ioctl(area_.fd(), KVM_GET_SREGS, &sregs, "GET_SREGS");
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
  checked_ioctl(area_.fd(), KVM_SET_SREGS, &sregs, "SET_SREGS");

  kvm_regs regs{};
  regs.rip = st.rip;
  regs.rsp = st.rsp;
  regs.rbp = st.rsp;
  regs.rsi = st.rsi;
  regs.rdi = st.rdi;
  regs.rflags = st.rflags;
  checked_ioctl(area_.fd(), KVM_SET_REGS, &regs, "SET_REGS");
  // With the in-kernel LAPIC, KVM parks every vCPU but the first until a startup IPI;
  // a vCPU given a start state (all Hermit vCPUs) runs from it at once.
  kvm_mp_state mp{KVM_MP_STATE_RUNNABLE};
  checked_ioctl(area_.fd(), KVM_SET_MP_STATE, &mp, "SET_MP_STATE");
}

x86::GeneralRegisters KvmVcpu::general_registers() {
  kvm_regs r{};
  checked_ioctl(area_.fd(), KVM_GET_REGS, &r, "GET_REGS");
  return {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags};
}

void KvmVcpu::set_general_registers(const x86::GeneralRegisters& g) {
  kvm_regs r{g.rax, g.rbx, g.rcx, g.rdx, g.rsi, g.rdi, g.rsp, g.rbp, g.r8, g.r9, g.r10, g.r11, g.r12, g.r13, g.r14, g.r15, g.rip, g.rflags};
  checked_ioctl(area_.fd(), KVM_SET_REGS, &r, "SET_REGS");
}

x86::PagingState KvmVcpu::paging_state() {
  kvm_sregs s{};
  checked_ioctl(area_.fd(), KVM_GET_SREGS, &s, "GET_SREGS");
  return {s.cr0, s.cr3, s.cr4, s.efer};
}

void KvmVcpu::set_guest_debug(const GuestDebug& d) {
  kvm_guest_debug g{};
  if (d.enabled) {
    g.control = KVM_GUESTDBG_ENABLE;
    if (d.single_step) g.control |= KVM_GUESTDBG_SINGLESTEP;
    // KVM_CAP_SET_GUEST_DEBUG2 lists the control bits this KVM takes (5.15+); others refuse the call.
    if (d.single_step && d.block_interrupts && (hypervisor_.check_extension(KVM_CAP_SET_GUEST_DEBUG2) & KVM_GUESTDBG_BLOCKIRQ))
      g.control |= KVM_GUESTDBG_BLOCKIRQ;
    if (d.software_breakpoints) g.control |= KVM_GUESTDBG_USE_SW_BP;
    if (d.hardware_breakpoint_count > 0) {
      g.control |= KVM_GUESTDBG_USE_HW_BP;
      uint64_t dr7 = 0x400;  // bit 10 reads as one
      for (int i = 0; i < d.hardware_breakpoint_count && i < 4; i++) {
        g.arch.debugreg[i] = d.hardware_breakpoints[i];
        dr7 |= 2ULL << (i * 2);  // Gn; R/Wn = 00 (execute) and LENn = 00 (one byte) stay zero
      }
      g.arch.debugreg[7] = dr7;
    }
  }
  checked_ioctl(area_.fd(), KVM_SET_GUEST_DEBUG, &g, "SET_GUEST_DEBUG");
}

x86::DebugRegisterFile KvmVcpu::debug_registers() {
  kvm_regs r{};
  kvm_sregs s{};
  kvm_fpu fpu{};
  checked_ioctl(area_.fd(), KVM_GET_REGS, &r, "GET_REGS");
  checked_ioctl(area_.fd(), KVM_GET_SREGS, &s, "GET_SREGS");
  checked_ioctl(area_.fd(), KVM_GET_FPU, &fpu, "GET_FPU");
  x86::DebugRegisterFile f;
  const uint64_t gprs[16] = {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15};
  std::memcpy(f.gpr, gprs, sizeof gprs);
  f.rip = r.rip;
  f.rflags = r.rflags;
  const kvm_segment* segs[6] = {&s.cs, &s.ss, &s.ds, &s.es, &s.fs, &s.gs};
  for (int i = 0; i < 6; i++) f.selector[i] = segs[i]->selector;
  f.fs_base = s.fs.base;
  f.gs_base = s.gs.base;
  for (int i = 0; i < 8; i++) std::memcpy(f.st[i], fpu.fpr[i], 10);
  f.fctrl = fpu.fcw;
  f.fstat = fpu.fsw;
  // FXSAVE's abridged tag (one bit per register: valid) as the full x87 tag word GDB shows.
  f.ftag = 0;
  for (int i = 0; i < 8; i++) f.ftag |= ((fpu.ftwx >> i) & 1 ? 0u : 3u) << (2 * i);
  f.fioff = static_cast<uint32_t>(fpu.last_ip);
  f.fooff = static_cast<uint32_t>(fpu.last_dp);
  f.fop = fpu.last_opcode;
  std::memcpy(f.xmm, fpu.xmm, sizeof f.xmm);
  f.mxcsr = fpu.mxcsr;
  return f;
}

void KvmVcpu::set_debug_registers(const x86::DebugRegisterFile& f) {
  kvm_sregs s{};
  checked_ioctl(area_.fd(), KVM_GET_SREGS, &s, "GET_SREGS");
  const kvm_segment* segs[6] = {&s.cs, &s.ss, &s.ds, &s.es, &s.fs, &s.gs};
  // A selector without its descriptor would leave the CPU's cached segment stale: refused.
  for (int i = 0; i < 6; i++)
    if (segs[i]->selector != f.selector[i]) throw VmrunError(ErrorCode::Usage, "segment registers cannot be changed from the debugger");
  if (s.fs.base != f.fs_base || s.gs.base != f.gs_base) throw VmrunError(ErrorCode::Usage, "fs_base and gs_base cannot be changed from the debugger");
  kvm_regs r{f.gpr[0], f.gpr[1], f.gpr[2], f.gpr[3], f.gpr[4], f.gpr[5], f.gpr[7], f.gpr[6], f.gpr[8], f.gpr[9], f.gpr[10], f.gpr[11], f.gpr[12], f.gpr[13], f.gpr[14], f.gpr[15], f.rip, f.rflags | 2};
  checked_ioctl(area_.fd(), KVM_SET_REGS, &r, "SET_REGS");
  kvm_fpu fpu{};
  checked_ioctl(area_.fd(), KVM_GET_FPU, &fpu, "GET_FPU");
  for (int i = 0; i < 8; i++) std::memcpy(fpu.fpr[i], f.st[i], 10);
  fpu.fcw = static_cast<uint16_t>(f.fctrl);
  fpu.fsw = static_cast<uint16_t>(f.fstat);
  uint8_t abridged = 0;
  for (int i = 0; i < 8; i++)
    if (((f.ftag >> (2 * i)) & 3) != 3) abridged |= static_cast<uint8_t>(1 << i);
  fpu.ftwx = abridged;
  fpu.last_opcode = static_cast<uint16_t>(f.fop);
  std::memcpy(fpu.xmm, f.xmm, sizeof f.xmm);
  fpu.mxcsr = f.mxcsr;
  checked_ioctl(area_.fd(), KVM_SET_FPU, &fpu, "SET_FPU");
}

StateBlob KvmVcpu::save_state() { return encode_vcpu_state(capture_vcpu_state(hypervisor_, area_.fd())); }

std::unique_ptr<LoadedVcpuState> KvmVcpu::load_state(const StateBlob& blob) { return load_vcpu_state(hypervisor_, area_.fd(), blob); }

void KvmVcpu::restore_state(const LoadedVcpuState& state) {
  apply_vcpu_state(hypervisor_, area_.fd(), dynamic_cast<const KvmLoadedVcpuState&>(state));
}

}  // namespace vmrun::kvm
