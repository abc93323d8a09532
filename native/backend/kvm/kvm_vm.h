// A KVM virtual machine: memory slots, the in-kernel PIC/IOAPIC/PIT, vCPU creation,
// interrupt lines and the VM-wide snapshot state.
#pragma once
#include "backend/hypervisor.h"
#include "backend/kvm/kvm_fd.h"

namespace vmrun::kvm {

class KvmHypervisor;

class KvmVm : public Vm {
 public:
  explicit KvmVm(KvmHypervisor& hypervisor);
  void map_memory(const GuestMemory& memory) override;
  void create_interrupt_controller() override;
  std::unique_ptr<Vcpu> create_vcpu(int index, int count, VcpuSetup setup) override;
  void set_irq_line(uint32_t gsi, bool level) override;
  std::unique_ptr<InterruptEvent> create_interrupt_event(uint32_t gsi) override;
  std::unique_ptr<NotifyEvent> create_notify_event(uint64_t address, uint32_t value) override;
  StateBlob save_state() override;
  void restore_state(const StateBlob& blob, bool catch_up_wall_clock) override;

  int fd() const { return fd_.get(); }

 private:
  KvmHypervisor& hypervisor_;
  Fd fd_;
};

// Addresses KVM needs for the real-mode TSS and identity map on Intel: just below
// 4 GiB, inside the MMIO hole, where no RAM or device lives.
constexpr uint64_t kTssAddress = 0xFFFB'D000;
constexpr uint64_t kIdentityMapAddress = 0xFFFB'C000;

}  // namespace vmrun::kvm
