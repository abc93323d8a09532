// A KVM vCPU: its fd and shared kvm_run page, boot-time CPUID/MSR/LAPIC set-up, the
// run call with exit translation, and the kick that interrupts it from another thread.
#pragma once
#include "backend/kvm/kvm_uapi.h"
#include <pthread.h>

#include <atomic>

#include "backend/hypervisor.h"
#include "backend/kvm/kvm_fd.h"

namespace vmrun::kvm {

class KvmHypervisor;
class KvmVm;

class KvmVcpu : public Vcpu {
 public:
  KvmVcpu(KvmHypervisor& hypervisor, KvmVm& vm, int index, int count, VcpuSetup setup);
  ~KvmVcpu() override;

  int index() const override { return index_; }
  VcpuExit run() override;
  void kick() override;
  void clear_kick() override;
  VcpuExit complete_pending_io() override;
  void bind_to_current_thread() override;

  void set_start_state(const x86::StartState& state) override;
  x86::GeneralRegisters general_registers() override;
  void set_general_registers(const x86::GeneralRegisters& regs) override;
  x86::PagingState paging_state() override;

  StateBlob save_state() override;
  std::unique_ptr<LoadedVcpuState> load_state(const StateBlob& blob) override;
  void restore_state(const LoadedVcpuState& state) override;

 private:
  void set_boot_cpuid(int count);
  void set_boot_msrs();
  void set_boot_fpu();
  void set_boot_lapic();
  VcpuExit translate_exit();

  KvmHypervisor& hypervisor_;
  int index_;
  Fd fd_;
  kvm_run* run_ = nullptr;
  size_t run_size_ = 0;
  std::atomic<bool> bound_{false};
  pthread_t thread_{};
};

}  // namespace vmrun::kvm
