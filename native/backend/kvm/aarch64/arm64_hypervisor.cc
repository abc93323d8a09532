#include "backend/kvm/aarch64/arm64_hypervisor.h"

#include <cstddef>
#include <fstream>

#include "arch/aarch64/layout.h"
#include "backend/kvm/kvm_vm_common.h"
#include "common/hex.h"

namespace vmrun {

std::unique_ptr<Hypervisor> open_hypervisor(const std::string& device_path) {
  return std::make_unique<kvm::KvmArm64Hypervisor>(device_path.empty() ? "/dev/kvm" : device_path);
}

namespace kvm {

namespace {

struct Capability {
  long id;
  const char* name;
};

/** What an arm64 VM cannot run without. */
const Capability kRequired[] = {
    {KVM_CAP_USER_MEMORY, "USER_MEMORY"}, {KVM_CAP_ONE_REG, "ONE_REG"},           {KVM_CAP_DEVICE_CTRL, "DEVICE_CTRL"},
    {KVM_CAP_ARM_PSCI_0_2, "ARM_PSCI_0_2"}, {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"}, {KVM_CAP_IRQFD, "IRQFD"},
    {KVM_CAP_MP_STATE, "MP_STATE"},
};

// KVM_CAP_COUNTER_OFFSET (Linux 6.4): the counter-offset restore method (issue 14).
constexpr long kCapCounterOffset = 227;
const Capability kOptional[] = {
    {KVM_CAP_ARM_VM_IPA_SIZE, "ARM_VM_IPA_SIZE"}, {kCapCounterOffset, "COUNTER_OFFSET"},
    {KVM_CAP_ARM_PMU_V3, "ARM_PMU_V3"},           {KVM_CAP_ARM_PTRAUTH_GENERIC, "ARM_PTRAUTH_GENERIC"},
};

/** A core register's id: offset in struct kvm_regs in 32-bit words (KVM_REG_ARM_CORE_REG). */
constexpr uint64_t core_register(size_t offset) {
  return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset / sizeof(uint32_t));
}

/** "CPU implementer" and "CPU part" of the first CPU, as /proc/cpuinfo gives them. */
std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, implementer, part;
  while (std::getline(in, line) && (implementer.empty() || part.empty())) {
    auto value = [&] { return line.substr(line.find(':') + 2); };
    if (line.rfind("CPU implementer", 0) == 0) implementer = value();
    else if (line.rfind("CPU part", 0) == 0) part = value();
  }
  return "implementer " + implementer + ", part " + part;
}

}  // namespace

KvmArm64Hypervisor::KvmArm64Hypervisor(const std::string& device_path) : path_(device_path), fd_(open_kvm_device(device_path)) {
  for (const auto& c : kRequired) {
    if (check_kvm_extension(fd_.get(), c.id) <= 0)
      throw VmrunError(ErrorCode::Host, "KVM at " + device_path + " lacks the capability KVM_CAP_" + c.name + " that vmrun needs");
  }
  vcpu_mmap_size_ = static_cast<size_t>(checked_ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0, "GET_VCPU_MMAP_SIZE"));
}

int KvmArm64Hypervisor::max_vcpus() {
  const int kvm = check_kvm_extension(fd_.get(), KVM_CAP_MAX_VCPUS);
  return kvm > 0 && kvm < aarch64::kMaxCpus ? kvm : aarch64::kMaxCpus;
}

HostReport KvmArm64Hypervisor::report() {
  HostReport r;
  r.backend = "kvm";
  r.device_path = path_;
  r.api_version = ::ioctl(fd_.get(), KVM_GET_API_VERSION, 0);
  r.cpu_vendor = "arm64";
  r.cpu_model = cpu_model();
  r.virtualization_kind = "el2";
  r.hardware_virtualization = true;
  r.max_vcpus = max_vcpus();
  r.recommended_vcpus = check_kvm_extension(fd_.get(), KVM_CAP_NR_VCPUS);
  for (const auto& c : kRequired) r.capabilities.emplace_back(c.name, check_kvm_extension(fd_.get(), c.id) > 0);
  for (const auto& c : kOptional) r.capabilities.emplace_back(c.name, check_kvm_extension(fd_.get(), c.id) > 0);
  return r;
}

std::unique_ptr<Vm> KvmArm64Hypervisor::create_vm() { return std::make_unique<KvmArm64Vm>(*this); }

KvmArm64Vm::KvmArm64Vm(KvmArm64Hypervisor& hypervisor) : hypervisor_(hypervisor) {
  // The host's largest guest-physical address size (0: KVM's default of 40 bits).
  const int ipa_bits = check_kvm_extension(hypervisor.fd(), KVM_CAP_ARM_VM_IPA_SIZE);
  const unsigned long type = ipa_bits > 0 ? KVM_VM_TYPE_ARM_IPA_SIZE(ipa_bits) : 0;
  fd_ = Fd(checked_ioctl(hypervisor.fd(), KVM_CREATE_VM, type, "CREATE_VM"));
  checked_ioctl(fd_.get(), KVM_ARM_PREFERRED_TARGET, &preferred_, "ARM_PREFERRED_TARGET");
}

void KvmArm64Vm::map_memory(const GuestMemory& memory) { map_guest_memory(fd_.get(), memory); }

void KvmArm64Vm::create_interrupt_controller() {
  kvm_create_device device{};
  device.type = KVM_DEV_TYPE_ARM_VGIC_V3;
  checked_ioctl(fd_.get(), KVM_CREATE_DEVICE, &device, "CREATE_DEVICE (VGIC_V3)");
  gic_ = Fd(static_cast<int>(device.fd));
  auto set = [&](uint32_t group, uint64_t attr, const void* value, const char* what) {
    kvm_device_attr a{};
    a.group = group;
    a.attr = attr;
    a.addr = reinterpret_cast<uint64_t>(value);
    checked_ioctl(gic_.get(), KVM_SET_DEVICE_ATTR, &a, what);
  };
  const uint64_t distributor = aarch64::kGicDistributorBase, redistributors = aarch64::kGicRedistributorBase;
  set(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &distributor, "VGIC distributor address");
  set(KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &redistributors, "VGIC redistributor address");
  const uint32_t interrupts = aarch64::kGicInterrupts;
  set(KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &interrupts, "VGIC interrupt count");
}

std::unique_ptr<Vcpu> KvmArm64Vm::create_vcpu(int index, int count, VcpuSetup setup) {
  if (!gic_.get()) throw VmrunError(ErrorCode::Internal, "arm64 vCPUs are created after the interrupt controller");
  kvm_vcpu_init init = preferred_;
  init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
  // Secondaries wait, powered off, for the guest's PSCI CPU_ON (Linux's enable-method).
  if (index > 0) init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
  auto vcpu = std::make_unique<KvmArm64Vcpu>(fd_.get(), hypervisor_.vcpu_mmap_size(), index, init);
  // The vGIC sizes its redistributors by the vCPUs that exist when it is initialised:
  // after the last one. (Without this KVM would initialise it at the first KVM_RUN, but
  // KVM_IRQ_LINE refuses a GICv3 that is not initialised, and a restore must write its
  // registers before any vCPU runs.)
  if (index == count - 1) {
    kvm_device_attr a{};
    a.group = KVM_DEV_ARM_VGIC_GRP_CTRL;
    a.attr = KVM_DEV_ARM_VGIC_CTRL_INIT;
    checked_ioctl(gic_.get(), KVM_SET_DEVICE_ATTR, &a, "VGIC CTRL_INIT");
  }
  (void)setup;  // arm64 has no boot-only set-up beyond KVM_ARM_VCPU_INIT
  return vcpu;
}

void KvmArm64Vm::set_irq_line(uint32_t gsi, bool level) {
  if (gsi >= aarch64::kGicInterrupts - aarch64::kGicPrivateInterrupts)
    throw VmrunError(ErrorCode::Internal, "SPI " + std::to_string(gsi) + " is beyond the vGIC's interrupts");
  kvm_irq_level irq{};
  irq.irq = (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | (gsi + aarch64::kGicPrivateInterrupts);
  irq.level = level ? 1 : 0;
  checked_ioctl(fd_.get(), KVM_IRQ_LINE, &irq, "IRQ_LINE");
}

// With no routing table set, KVM's irqfd GSI n is SPI n on arm64.
std::unique_ptr<InterruptEvent> KvmArm64Vm::create_interrupt_event(uint32_t gsi) { return create_irqfd(fd_.get(), gsi); }
std::unique_ptr<NotifyEvent> KvmArm64Vm::create_notify_event(uint64_t address, uint32_t value) { return create_ioeventfd(fd_.get(), address, value); }

static VmrunError no_arm64_snapshots() {
  return VmrunError(ErrorCode::Usage, "snapshots of arm64 VMs are not implemented yet (the GIC and timer state is named in arch/aarch64/interrupt_state.h)");
}

StateBlob KvmArm64Vm::save_state() { throw no_arm64_snapshots(); }
void KvmArm64Vm::restore_state(const StateBlob&, bool) { throw no_arm64_snapshots(); }

KvmArm64Vcpu::KvmArm64Vcpu(int vm_fd, size_t mmap_size, int index, const kvm_vcpu_init& init)
    : index_(index), area_(vm_fd, index, mmap_size) {
  checked_ioctl(area_.fd(), KVM_ARM_VCPU_INIT, &init, "ARM_VCPU_INIT");
}

uint64_t KvmArm64Vcpu::get_register(uint64_t id) {
  uint64_t value = 0;
  kvm_one_reg reg{id, reinterpret_cast<uint64_t>(&value)};
  checked_ioctl(area_.fd(), KVM_GET_ONE_REG, &reg, "GET_ONE_REG");
  return value;
}

void KvmArm64Vcpu::set_register(uint64_t id, uint64_t value) {
  kvm_one_reg reg{id, reinterpret_cast<uint64_t>(&value)};
  checked_ioctl(area_.fd(), KVM_SET_ONE_REG, &reg, "SET_ONE_REG");
}

void KvmArm64Vcpu::set_start_state(const aarch64::StartState& s) {
  // KVM_ARM_VCPU_INIT left the rest as the boot protocol wants it: EL1h, DAIF masked, MMU off.
  set_register(core_register(offsetof(kvm_regs, regs.pc)), s.pc);
  const uint64_t x[4] = {s.x0, s.x1, s.x2, s.x3};
  for (size_t i = 0; i < 4; i++) set_register(core_register(offsetof(kvm_regs, regs.regs) + i * sizeof(uint64_t)), x[i]);
}

uint64_t KvmArm64Vcpu::instruction_pointer() { return get_register(core_register(offsetof(kvm_regs, regs.pc))); }

StateBlob KvmArm64Vcpu::save_state() { throw no_arm64_snapshots(); }
std::unique_ptr<LoadedVcpuState> KvmArm64Vcpu::load_state(const StateBlob&) { throw no_arm64_snapshots(); }
void KvmArm64Vcpu::restore_state(const LoadedVcpuState&) { throw no_arm64_snapshots(); }

}  // namespace kvm
}  // namespace vmrun
