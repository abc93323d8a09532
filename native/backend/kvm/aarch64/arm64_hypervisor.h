// KVM on arm64: the /dev/kvm handle with the capabilities an arm64 VM needs, a VM with
// the host's IPA size and an in-kernel vGICv3, and vCPUs with in-kernel PSCI 0.2.
// Snapshots: a vCPU saves every register KVM_GET_REG_LIST lists, its MP state and its
// virtual timer (vcpu_state_codec.h); the VM saves the vGICv3 and the guest counter
// (arch/aarch64/interrupt_state.h). On restore the VM's state goes first, then each
// vCPU's (KvmArm64Vm::restore_state says why).
#pragma once
#include "backend/kvm/kvm_uapi.h"

#include <memory>
#include <string>
#include <vector>

#include "arch/aarch64/vcpu.h"
#include "backend/hypervisor.h"
#include "backend/kvm/kvm_fd.h"
#include "backend/kvm/kvm_run_area.h"

namespace vmrun::kvm {

class KvmArm64Hypervisor : public Hypervisor {
 public:
  explicit KvmArm64Hypervisor(const std::string& device_path);
  HostReport report() override;
  int max_vcpus() override;
  std::unique_ptr<Vm> create_vm() override;
  int fd() const { return fd_.get(); }
  size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }

 private:
  std::string path_;
  Fd fd_;
  size_t vcpu_mmap_size_ = 0;
};

/** The name of the way a restore sets the guest counter, with or without KVM_CAP_COUNTER_OFFSET. */
inline const char* guest_counter_restore_method(bool counter_offset_api) {
  return counter_offset_api ? "KVM_ARM_SET_COUNTER_OFFSET" : "KVM_REG_ARM_TIMER_CNT";
}

class KvmArm64Vm : public Vm {
 public:
  explicit KvmArm64Vm(KvmArm64Hypervisor& hypervisor);
  void map_memory(const GuestMemory& memory) override;
  /** The vGICv3 with its distributor and redistributor addresses and interrupt count. */
  void create_interrupt_controller() override;
  /** vCPU `index`: powered off until PSCI CPU_ON unless it is vCPU 0; the last one created initialises the vGIC. */
  std::unique_ptr<Vcpu> create_vcpu(int index, int count, VcpuSetup setup) override;
  /** `gsi` is the SPI number (interrupt ID - 32), as the device tree gives it. */
  void set_irq_line(uint32_t gsi, bool level) override;
  std::unique_ptr<InterruptEvent> create_interrupt_event(uint32_t gsi) override;
  std::unique_ptr<NotifyEvent> create_notify_event(uint64_t address, uint32_t value) override;
  /** The vGICv3 and the guest counter; every vCPU created and none running. */
  StateBlob save_state() override;
  bool state_precedes_vcpus() const override { return true; }
  /**
   * Checks the saved GIC state against this VM (vCPU count and MPIDRs, counter
   * frequency) and applies it: the counter, then the redistributors, distributor and
   * CPU interfaces. Call after every vCPU is created (the vGIC is initialised) and
   * before any vCPU's restore_state().
   */
  void restore_state(const StateBlob& blob, bool catch_up_wall_clock) override;
  /** How restore_state sets the guest counter here: the ioctl or register's name, for reports. */
  const char* counter_restore_method() const { return guest_counter_restore_method(counter_offset_api_); }

 private:
  uint32_t dist_get(uint32_t offset);
  void dist_set(uint32_t offset, uint32_t value);
  uint32_t redist_get(uint64_t mpidr, uint32_t offset);
  void redist_set(uint64_t mpidr, uint32_t offset, uint32_t value);
  uint64_t icc_get(uint64_t mpidr, uint32_t instr);
  void icc_set(uint64_t mpidr, uint32_t instr, uint64_t value);
  uint32_t level_get(uint64_t mpidr, uint32_t intid);
  void level_set(uint64_t mpidr, uint32_t intid, uint32_t value);

  KvmArm64Hypervisor& hypervisor_;
  Fd fd_;
  Fd gic_;
  kvm_vcpu_init preferred_{};
  /** The vCPUs' fds by index (owned by the vCPUs, which outlive every save and restore). */
  std::vector<int> vcpu_fds_;
  /** KVM_CAP_COUNTER_OFFSET: the VM-wide counter offset (6.4+) rather than writing TIMER_CNT. */
  bool counter_offset_api_ = false;
  /** The vGIC took CTRL_INIT (after the last vCPU): KVM accepts irqfds from then on. */
  bool gic_initialized_ = false;
  /**
   * Interrupt events created before that (the builder attaches devices before it
   * creates vCPUs), with a duplicate of each eventfd, bound at CTRL_INIT: KVM refuses
   * an irqfd on an uninitialised vGIC (EAGAIN).
   */
  std::vector<std::pair<Fd, uint32_t>> unbound_irqfds_;
};

class KvmArm64Vcpu : public Arm64Vcpu {
 public:
  KvmArm64Vcpu(int vm_fd, size_t mmap_size, int index, const kvm_vcpu_init& init);
  int index() const override { return index_; }
  VcpuExit run() override { return area_.run(); }
  void kick() override { area_.kick(); }
  void clear_kick() override { area_.clear_kick(); }
  VcpuExit complete_pending_io() override { return area_.complete_pending_io(); }
  void bind_to_current_thread() override { area_.bind_to_current_thread(); }

  void set_start_state(const aarch64::StartState& state) override;
  uint64_t instruction_pointer() override;

  StateBlob save_state() override;
  std::unique_ptr<LoadedVcpuState> load_state(const StateBlob& blob) override;
  void restore_state(const LoadedVcpuState& state) override;

  /** One 64-bit register through KVM_{GET,SET}_ONE_REG (`id` as KVM encodes it). */
  uint64_t get_register(uint64_t id);
  void set_register(uint64_t id, uint64_t value);
  int fd() const { return area_.fd(); }

 private:
  int index_;
  KvmRunArea area_;
};

}  // namespace vmrun::kvm
