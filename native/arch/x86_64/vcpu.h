// What the VMM asks of an x86-64 vCPU beyond the architecture-neutral Vcpu: its start
// state, its registers and paging (for hypercalls that pass guest-virtual pointers, and
// for reports), and the debugger's register file. Any backend that runs x86-64 guests
// (KVM today) implements it; the VMM reaches it through Vcpu::x86() or x86_vcpu().
#pragma once
#include "arch/x86_64/cpu_state.h"
#include "arch/x86_64/gdb_registers.h"
#include "backend/hypervisor.h"

namespace vmrun {

class X86Vcpu : public Vcpu {
 public:
  X86Vcpu* x86() override { return this; }
  uint64_t instruction_pointer() override { return general_registers().rip; }

  virtual void set_start_state(const x86::StartState& state) = 0;
  virtual x86::GeneralRegisters general_registers() = 0;
  virtual void set_general_registers(const x86::GeneralRegisters& regs) = 0;
  virtual x86::PagingState paging_state() = 0;
  /** The registers a debugger sees; the vCPU must not be running. */
  virtual x86::DebugRegisterFile debug_registers() { throw_no_debug(); }
  /** Applies a debugger's register changes (general, rip, rflags, x87, SSE; segment selectors and bases must be unchanged). */
  virtual void set_debug_registers(const x86::DebugRegisterFile&) { throw_no_debug(); }
};

/** The x86-64 interface of a vCPU of an x86-64 machine; a vCPU of another architecture is a bug here. */
inline X86Vcpu& x86_vcpu(Vcpu& vcpu) {
  if (X86Vcpu* x = vcpu.x86()) return *x;
  throw VmrunError(ErrorCode::Internal, "x86 state asked of a vCPU of another architecture");
}

}  // namespace vmrun
