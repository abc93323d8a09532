// A KVM x86_64 vCPU: boot-time CPUID/MSR/LAPIC set-up, registers and snapshot state;
// the run call, its exits and the kick are its KvmRunArea's (shared with aarch64).
#pragma once
#include "backend/kvm/kvm_uapi.h"

#include "arch/x86_64/vcpu.h"
#include "backend/kvm/kvm_run_area.h"

namespace vmrun::kvm {

class KvmHypervisor;
class KvmVm;

class KvmVcpu : public X86Vcpu {
 public:
  KvmVcpu(KvmHypervisor& hypervisor, KvmVm& vm, int index, int count, VcpuSetup setup);

  int index() const override { return index_; }
  VcpuExit run() override { return area_.run(); }
  void kick() override { area_.kick(); }
  void clear_kick() override { area_.clear_kick(); }
  VcpuExit complete_pending_io() override { return area_.complete_pending_io(); }
  void bind_to_current_thread() override { area_.bind_to_current_thread(); }

  void set_start_state(const x86::StartState& state) override;
  x86::GeneralRegisters general_registers() override;
  void set_general_registers(const x86::GeneralRegisters& regs) override;
  x86::PagingState paging_state() override;
  void set_guest_debug(const GuestDebug& debug) override;
  x86::DebugRegisterFile debug_registers() override;
  void set_debug_registers(const x86::DebugRegisterFile& file) override;

  StateBlob save_state() override;
  std::unique_ptr<LoadedVcpuState> load_state(const StateBlob& blob) override;
  void restore_state(const LoadedVcpuState& state) override;

 private:
  void set_boot_cpuid(int count);
  void set_boot_msrs();
  void set_boot_fpu();
  void set_boot_lapic();

  KvmHypervisor& hypervisor_;
  int index_;
  KvmRunArea area_;
};

}  // namespace vmrun::kvm
