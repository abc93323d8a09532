// KVM on arm64: the /dev/kvm handle with the capabilities an arm64 VM needs, a VM with
// the host's IPA size and an in-kernel vGICv3, and vCPUs with in-kernel PSCI 0.2.
// Snapshots are not wired yet (issue 14): arch/aarch64/interrupt_state.h names the
// GIC and timer state they will carry, and save/restore refuse in one clear line.
#pragma once
#include "backend/kvm/kvm_uapi.h"

#include <memory>
#include <string>

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
  StateBlob save_state() override;
  void restore_state(const StateBlob& blob, bool catch_up_wall_clock) override;

 private:
  KvmArm64Hypervisor& hypervisor_;
  Fd fd_;
  Fd gic_;
  kvm_vcpu_init preferred_{};
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

 private:
  int index_;
  KvmRunArea area_;
};

}  // namespace vmrun::kvm
