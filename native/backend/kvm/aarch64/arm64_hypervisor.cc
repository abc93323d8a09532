#include "backend/kvm/aarch64/arm64_hypervisor.h"

#include <cstddef>
#include <cstring>
#include <fstream>

#include <unistd.h>

#include "arch/aarch64/interrupt_state.h"
#include "arch/aarch64/layout.h"
#include "backend/kvm/aarch64/vcpu_state_codec.h"
#include "backend/kvm/kvm_vm_common.h"
#include "common/hex.h"

// KVM_ARM_SET_COUNTER_OFFSET (Linux 6.4; the cross toolchain's headers are 6.1's).
#ifndef KVM_ARM_SET_COUNTER_OFFSET
struct kvm_arm_counter_offset {
  __u64 counter_offset;
  __u64 reserved;
};
#define KVM_ARM_SET_COUNTER_OFFSET _IOW(KVMIO, 0xb5, struct kvm_arm_counter_offset)
#endif

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
    {KVM_CAP_MP_STATE, "MP_STATE"}, {KVM_CAP_VCPU_EVENTS, "VCPU_EVENTS"},
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
  r.guest_clock_restore = guest_counter_restore_method(check_kvm_extension(fd_.get(), kCapCounterOffset) > 0);
  return r;
}

std::unique_ptr<Vm> KvmArm64Hypervisor::create_vm() { return std::make_unique<KvmArm64Vm>(*this); }

KvmArm64Vm::KvmArm64Vm(KvmArm64Hypervisor& hypervisor) : hypervisor_(hypervisor) {
  // The host's largest guest-physical address size (0: KVM's default of 40 bits).
  const int ipa_bits = check_kvm_extension(hypervisor.fd(), KVM_CAP_ARM_VM_IPA_SIZE);
  const unsigned long type = ipa_bits > 0 ? KVM_VM_TYPE_ARM_IPA_SIZE(ipa_bits) : 0;
  fd_ = Fd(checked_ioctl(hypervisor.fd(), KVM_CREATE_VM, type, "CREATE_VM"));
  checked_ioctl(fd_.get(), KVM_ARM_PREFERRED_TARGET, &preferred_, "ARM_PREFERRED_TARGET");
  counter_offset_api_ = check_kvm_extension(fd_.get(), kCapCounterOffset) > 0;
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
  if (index != static_cast<int>(vcpu_fds_.size())) throw VmrunError(ErrorCode::Internal, "arm64 vCPUs are created in index order");
  auto vcpu = std::make_unique<KvmArm64Vcpu>(fd_.get(), hypervisor_.vcpu_mmap_size(), index, init);
  vcpu_fds_.push_back(vcpu->fd());
  // The vGIC sizes its redistributors by the vCPUs that exist when it is initialised:
  // after the last one. (Without this KVM would initialise it at the first KVM_RUN, but
  // KVM_IRQ_LINE refuses a GICv3 that is not initialised, and a restore must write its
  // registers before any vCPU runs.)
  if (index == count - 1) {
    kvm_device_attr a{};
    a.group = KVM_DEV_ARM_VGIC_GRP_CTRL;
    a.attr = KVM_DEV_ARM_VGIC_CTRL_INIT;
    checked_ioctl(gic_.get(), KVM_SET_DEVICE_ATTR, &a, "VGIC CTRL_INIT");
    gic_initialized_ = true;
    for (const auto& [event_fd, gsi] : unbound_irqfds_) bind_irqfd(fd_.get(), event_fd.get(), gsi);
    unbound_irqfds_.clear();  // KVM holds the eventfds now; the devices keep theirs
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
std::unique_ptr<InterruptEvent> KvmArm64Vm::create_interrupt_event(uint32_t gsi) {
  if (gic_initialized_) return create_irqfd(fd_.get(), gsi);
  auto event = create_unbound_irqfd(gsi);
  Fd copy(::dup(event->event_fd()));
  if (copy.get() < 0) throw VmrunError(ErrorCode::Host, errno_message("dup of the eventfd for SPI " + std::to_string(gsi), errno));
  unbound_irqfds_.emplace_back(std::move(copy), gsi);
  return event;
}
std::unique_ptr<NotifyEvent> KvmArm64Vm::create_notify_event(uint64_t address, uint32_t value) { return create_ioeventfd(fd_.get(), address, value); }

namespace {

using aarch64::GicCpuInterfaceState;
using aarch64::GicDistributorState;
using aarch64::GicRedistributorState;
using aarch64::InterruptState;
using aarch64::vgic_mpidr;

// Register offsets (GICv3 architecture specification). The SGI_base frame of a
// redistributor is 64 KiB after its RD_base frame.
constexpr uint32_t kGicdCtlr = 0x0000, kGicdIidr = 0x0008, kGicdIgroupr = 0x0080, kGicdIsenabler = 0x0100, kGicdIcenabler = 0x0180,
                   kGicdIspendr = 0x0200, kGicdIsactiver = 0x0300, kGicdIcactiver = 0x0380, kGicdIpriorityr = 0x0400, kGicdIcfgr = 0x0C00,
                   kGicdIgrpmodr = 0x0D00, kGicdIrouter = 0x6000;
constexpr uint32_t kSgiFrame = 0x1'0000;
constexpr uint32_t kGicrCtlr = 0x0000, kGicrWaker = 0x0014, kGicrPropbaser = 0x0070, kGicrPendbaser = 0x0078, kGicrIgroupr0 = kSgiFrame + 0x0080,
                   kGicrIsenabler0 = kSgiFrame + 0x0100, kGicrIcenabler0 = kSgiFrame + 0x0180, kGicrIspendr0 = kSgiFrame + 0x0200,
                   kGicrIsactiver0 = kSgiFrame + 0x0300, kGicrIcactiver0 = kSgiFrame + 0x0380, kGicrIpriorityr = kSgiFrame + 0x0400,
                   kGicrIcfgr0 = kSgiFrame + 0x0C00, kGicrIcfgr1 = kSgiFrame + 0x0C04, kGicrIgrpmodr0 = kSgiFrame + 0x0D00;

/** The `instr` field of a CPU_SYSREGS attribute: op0, op1, CRn, CRm, op2 as an MRS encodes them. */
constexpr uint32_t icc(uint32_t op0, uint32_t op1, uint32_t crn, uint32_t crm, uint32_t op2) {
  return (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2;
}
constexpr uint32_t kIccPmr = icc(3, 0, 4, 6, 0), kIccBpr0 = icc(3, 0, 12, 8, 3), kIccBpr1 = icc(3, 0, 12, 12, 3), kIccCtlr = icc(3, 0, 12, 12, 4),
                   kIccSre = icc(3, 0, 12, 12, 5), kIccIgrpen0 = icc(3, 0, 12, 12, 6), kIccIgrpen1 = icc(3, 0, 12, 12, 7);
constexpr uint32_t icc_ap0r(uint32_t n) { return icc(3, 0, 12, 8, 4 + n); }
constexpr uint32_t icc_ap1r(uint32_t n) { return icc(3, 0, 12, 9, n); }

/** Interrupt IDs 27 (EL1 virtual timer) and 30 (EL1 physical timer), whose lines KVM's timer emulation drives. */
constexpr uint32_t kKvmTimerPpis = (1u << (16 + aarch64::kTimerVirtPpi)) | (1u << (16 + aarch64::kTimerPhysPpi));

/** SPI words of the one-bit-per-interrupt registers (word 0, IDs 0-31, is the redistributors'). */
constexpr uint32_t kFirstSpiWord = aarch64::kGicPrivateInterrupts / 32;

uint64_t one_reg(int fd, uint64_t id) {
  uint64_t value = 0;
  kvm_one_reg reg{id, reinterpret_cast<uint64_t>(&value)};
  checked_ioctl(fd, KVM_GET_ONE_REG, &reg, "GET_ONE_REG");
  return value;
}

void set_one_reg(int fd, uint64_t id, uint64_t value) {
  kvm_one_reg reg{id, reinterpret_cast<uint64_t>(&value)};
  checked_ioctl(fd, KVM_SET_ONE_REG, &reg, "SET_ONE_REG");
}

/** CNTFRQ_EL0: the counter's frequency, the same for the host and its guests. */
uint64_t host_counter_frequency() {
#if defined(__aarch64__)
  uint64_t v;
  asm volatile("mrs %0, cntfrq_el0" : "=r"(v));
  return v;
#else
  return 0;
#endif
}

/** The host's counter now (CNTVCT_EL0 of a host process: the physical count, the host's own offset being 0). */
uint64_t host_counter_now() {
#if defined(__aarch64__)
  uint64_t v;
  asm volatile("isb; mrs %0, cntvct_el0" : "=r"(v)::"memory");
  return v;
#else
  return 0;
#endif
}

}  // namespace

uint32_t KvmArm64Vm::dist_get(uint32_t offset) {
  uint32_t v = 0;
  kvm_device_attr a{0, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, offset, reinterpret_cast<uint64_t>(&v)};
  checked_ioctl(gic_.get(), KVM_GET_DEVICE_ATTR, &a, "GET_DEVICE_ATTR (GIC distributor)");
  return v;
}
void KvmArm64Vm::dist_set(uint32_t offset, uint32_t value) {
  kvm_device_attr a{0, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, offset, reinterpret_cast<uint64_t>(&value)};
  checked_ioctl(gic_.get(), KVM_SET_DEVICE_ATTR, &a, "SET_DEVICE_ATTR (GIC distributor)");
}
uint32_t KvmArm64Vm::redist_get(uint64_t mpidr, uint32_t offset) {
  uint32_t v = 0;
  kvm_device_attr a{0, KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, (vgic_mpidr(mpidr) << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) | offset, reinterpret_cast<uint64_t>(&v)};
  checked_ioctl(gic_.get(), KVM_GET_DEVICE_ATTR, &a, "GET_DEVICE_ATTR (GIC redistributor)");
  return v;
}
void KvmArm64Vm::redist_set(uint64_t mpidr, uint32_t offset, uint32_t value) {
  kvm_device_attr a{0, KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, (vgic_mpidr(mpidr) << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) | offset, reinterpret_cast<uint64_t>(&value)};
  checked_ioctl(gic_.get(), KVM_SET_DEVICE_ATTR, &a, "SET_DEVICE_ATTR (GIC redistributor)");
}
uint64_t KvmArm64Vm::icc_get(uint64_t mpidr, uint32_t instr) {
  uint64_t v = 0;
  kvm_device_attr a{0, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, (vgic_mpidr(mpidr) << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) | instr, reinterpret_cast<uint64_t>(&v)};
  checked_ioctl(gic_.get(), KVM_GET_DEVICE_ATTR, &a, "GET_DEVICE_ATTR (GIC CPU interface)");
  return v;
}
void KvmArm64Vm::icc_set(uint64_t mpidr, uint32_t instr, uint64_t value) {
  kvm_device_attr a{0, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, (vgic_mpidr(mpidr) << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) | instr, reinterpret_cast<uint64_t>(&value)};
  checked_ioctl(gic_.get(), KVM_SET_DEVICE_ATTR, &a, "SET_DEVICE_ATTR (GIC CPU interface)");
}
uint32_t KvmArm64Vm::level_get(uint64_t mpidr, uint32_t intid) {
  uint32_t v = 0;
  const uint64_t attr = (vgic_mpidr(mpidr) << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) |
                        (uint64_t{VGIC_LEVEL_INFO_LINE_LEVEL} << KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT) | intid;
  kvm_device_attr a{0, KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, attr, reinterpret_cast<uint64_t>(&v)};
  checked_ioctl(gic_.get(), KVM_GET_DEVICE_ATTR, &a, "GET_DEVICE_ATTR (GIC line levels)");
  return v;
}
void KvmArm64Vm::level_set(uint64_t mpidr, uint32_t intid, uint32_t value) {
  const uint64_t attr = (vgic_mpidr(mpidr) << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) |
                        (uint64_t{VGIC_LEVEL_INFO_LINE_LEVEL} << KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT) | intid;
  kvm_device_attr a{0, KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, attr, reinterpret_cast<uint64_t>(&value)};
  checked_ioctl(gic_.get(), KVM_SET_DEVICE_ATTR, &a, "SET_DEVICE_ATTR (GIC line levels)");
}

StateBlob KvmArm64Vm::save_state() {
  if (!gic_.get() || vcpu_fds_.empty()) throw VmrunError(ErrorCode::Internal, "an arm64 VM is saved after its vGIC and vCPUs exist");
  InterruptState s;
  // The counter first: it runs on while the rest is read (about 30 ms of ioctls in the
  // nested L1), and the guest should lose as little of that as it can. It is VM-wide in
  // KVM (one CNTVOFF for all vCPUs): vCPU 0's view is the guest's.
  s.guest_counter = one_reg(vcpu_fds_[0], arm64::kTimerCnt);
  s.counter_frequency_hz = host_counter_frequency();
  GicDistributorState& d = s.distributor;
  d.ctlr = dist_get(kGicdCtlr);
  d.iidr = dist_get(kGicdIidr);
  for (uint32_t w = kFirstSpiWord; w < GicDistributorState::kWords; w++) {
    d.igroupr[w] = dist_get(kGicdIgroupr + 4 * w);
    d.isenabler[w] = dist_get(kGicdIsenabler + 4 * w);
    d.ispendr[w] = dist_get(kGicdIspendr + 4 * w);
    d.isactiver[w] = dist_get(kGicdIsactiver + 4 * w);
    d.igrpmodr[w] = dist_get(kGicdIgrpmodr + 4 * w);
    d.spi_line_level[w] = level_get(0, 32 * w);
  }
  for (uint32_t i = aarch64::kGicPrivateInterrupts / 4; i < d.ipriorityr.size(); i++) d.ipriorityr[i] = dist_get(kGicdIpriorityr + 4 * i);
  for (uint32_t i = aarch64::kGicPrivateInterrupts / 16; i < d.icfgr.size(); i++) d.icfgr[i] = dist_get(kGicdIcfgr + 4 * i);
  for (uint32_t i = 0; i < d.irouter.size(); i++) {
    const uint32_t at = kGicdIrouter + 8 * (aarch64::kGicPrivateInterrupts + i);
    d.irouter[i] = dist_get(at) | (uint64_t{dist_get(at + 4)} << 32);
  }
  s.cpus.resize(vcpu_fds_.size());
  for (size_t c = 0; c < vcpu_fds_.size(); c++) {
    InterruptState::PerCpu& cpu = s.cpus[c];
    const uint64_t m = cpu.mpidr = one_reg(vcpu_fds_[c], arm64::kMpidr);
    GicRedistributorState& r = cpu.redistributor;
    r.ctlr = redist_get(m, kGicrCtlr);
    r.waker = redist_get(m, kGicrWaker);
    r.propbaser = redist_get(m, kGicrPropbaser) | (uint64_t{redist_get(m, kGicrPropbaser + 4)} << 32);
    r.pendbaser = redist_get(m, kGicrPendbaser) | (uint64_t{redist_get(m, kGicrPendbaser + 4)} << 32);
    r.igroupr0 = redist_get(m, kGicrIgroupr0);
    r.isenabler0 = redist_get(m, kGicrIsenabler0);
    r.ispendr0 = redist_get(m, kGicrIspendr0);
    r.isactiver0 = redist_get(m, kGicrIsactiver0);
    for (uint32_t i = 0; i < r.ipriorityr.size(); i++) r.ipriorityr[i] = redist_get(m, kGicrIpriorityr + 4 * i);
    r.icfgr0 = redist_get(m, kGicrIcfgr0);
    r.icfgr1 = redist_get(m, kGicrIcfgr1);
    r.igrpmodr0 = redist_get(m, kGicrIgrpmodr0);
    r.private_line_level = level_get(m, 0);
    GicCpuInterfaceState& i = cpu.cpu_interface;
    i.sre = icc_get(m, kIccSre);
    i.ctlr = icc_get(m, kIccCtlr);
    i.pmr = icc_get(m, kIccPmr);
    i.bpr0 = icc_get(m, kIccBpr0);
    i.bpr1 = icc_get(m, kIccBpr1);
    i.igrpen0 = icc_get(m, kIccIgrpen0);
    i.igrpen1 = icc_get(m, kIccIgrpen1);
    for (int n = 0; n < i.ap_registers(); n++) {
      i.ap0r[n] = icc_get(m, icc_ap0r(n));
      i.ap1r[n] = icc_get(m, icc_ap1r(n));
    }
  }
  return aarch64::encode_interrupt_state(s);
}

// Restore order, and why:
//  1. The vCPUs exist and are KVM_ARM_VCPU_INIT-ed, and the vGIC is CTRL_INIT-ed
//     (create_vcpu does it after the last vCPU): the redistributors and CPU
//     interfaces are per vCPU, addressed by MPIDR, and KVM refuses their attributes
//     (ENXIO/EBUSY) before the vGIC is initialised; the vCPUs must be created in the
//     same order as at save, or a redistributor would belong to another vCPU
//     (arm-vgic-v3.rst), which is why MPIDRs are compared first.
//  2. The counter, before any timer register: CNTV_CVAL is an absolute count, and the
//     timer's output is judged against the restored counter.
//  3. GICD_IIDR first (arm-vgic-v3.rst: before any other register, so the interface
//     behaves as the saved one did), then each redistributor (PROPBASER/PENDBASER
//     before GICR_CTLR, which is where LPIs would be enabled), then the distributor:
//     groups, trigger configuration (ICFGR) before the line levels and pending latch,
//     which mean different things for edge and level interrupts, enables after the
//     configuration, GICD_CTLR last; then the CPU interfaces, ICC_SRE_EL1 and
//     ICC_CTLR_EL1 first (CTLR's PRIbits tells how many AP registers exist).
//  4. Only then the vCPU registers (KvmArm64Vcpu::restore_state), with the timer's
//     CTL/CVAL last: every vCPU ioctl loads the vCPU, and loading re-evaluates the
//     timer and drives its PPI's level into the vGIC. Restoring the vGIC's saved line
//     levels after that would overwrite what KVM just computed (and leave the timer's
//     cached level disagreeing with the vGIC's: a lost or stuck timer interrupt); with
//     the GIC first, KVM's own evaluation of the restored timer has the last word.
void KvmArm64Vm::restore_state(const StateBlob& blob, bool catch_up_wall_clock) {
  const InterruptState s = aarch64::decode_interrupt_state(blob);
  // Every check before anything is written.
  if (catch_up_wall_clock)
    throw VmrunError(ErrorCode::Snapshot, "an arm64 guest's clock continues from the save; catching up with the wall clock is not implemented for arm64");
  if (s.cpus.size() != vcpu_fds_.size())
    throw VmrunError(ErrorCode::Snapshot, "the GIC state is for " + std::to_string(s.cpus.size()) + " vCPUs and this VM has " + std::to_string(vcpu_fds_.size()));
  for (size_t c = 0; c < vcpu_fds_.size(); c++) {
    const uint64_t here = one_reg(vcpu_fds_[c], arm64::kMpidr);
    if (vgic_mpidr(here) != vgic_mpidr(s.cpus[c].mpidr))
      throw VmrunError(ErrorCode::Snapshot, "vCPU " + std::to_string(c) + " had MPIDR " + hex(s.cpus[c].mpidr) + " at save and has " + hex(here) + " here");
  }
  const uint64_t frequency = host_counter_frequency();
  if (frequency != s.counter_frequency_hz)
    throw VmrunError(ErrorCode::Snapshot, "the snapshot's counter ran at " + std::to_string(s.counter_frequency_hz) + " Hz and this host's runs at " +
                                              std::to_string(frequency) + " Hz: restore it on a host with the same counter frequency");

  // 2. The guest counter continues from the save: the time on disk does not exist for the guest.
  if (counter_offset_api_) {
    // guest = host - offset. Read the host's counter before setting: the guest's then
    // starts at or just after the saved value, never before it.
    kvm_arm_counter_offset offset{};
    offset.counter_offset = host_counter_now() - s.guest_counter;
    checked_ioctl(fd_.get(), KVM_ARM_SET_COUNTER_OFFSET, &offset, "ARM_SET_COUNTER_OFFSET");
  } else {
    // 6.1: KVM_REG_ARM_TIMER_CNT sets the VM's one virtual counter offset (through any vCPU).
    set_one_reg(vcpu_fds_[0], arm64::kTimerCnt, s.guest_counter);
  }

  // 3. The vGIC.
  const GicDistributorState& d = s.distributor;
  dist_set(kGicdIidr, d.iidr);
  for (const auto& cpu : s.cpus) {
    const uint64_t m = cpu.mpidr;
    const GicRedistributorState& r = cpu.redistributor;
    redist_set(m, kGicrWaker, r.waker);
    redist_set(m, kGicrPropbaser, static_cast<uint32_t>(r.propbaser));
    redist_set(m, kGicrPropbaser + 4, static_cast<uint32_t>(r.propbaser >> 32));
    redist_set(m, kGicrPendbaser, static_cast<uint32_t>(r.pendbaser));
    redist_set(m, kGicrPendbaser + 4, static_cast<uint32_t>(r.pendbaser >> 32));
    redist_set(m, kGicrIgroupr0, r.igroupr0);
    redist_set(m, kGicrIgrpmodr0, r.igrpmodr0);
    redist_set(m, kGicrIcfgr0, r.icfgr0);
    redist_set(m, kGicrIcfgr1, r.icfgr1);
    for (uint32_t i = 0; i < r.ipriorityr.size(); i++) redist_set(m, kGicrIpriorityr + 4 * i, r.ipriorityr[i]);
    // The timers' PPI lines are KVM's own output, not an input anyone else drives: KVM
    // re-evaluates each timer when the vCPU is first loaded and raises its line then.
    // A line restored high beforehand hides that rising edge from KVM (the level is
    // already high, so nothing is injected), and the L1 runs showed the restored guest
    // then missing its first timer interrupt (1-2 s late, or never). They start low.
    level_set(m, 0, r.private_line_level & ~kKvmTimerPpis);
    redist_set(m, kGicrIspendr0, r.ispendr0);  // user-space writes set and clear the latch
    redist_set(m, kGicrIcactiver0, ~r.isactiver0);
    redist_set(m, kGicrIsactiver0, r.isactiver0);
    redist_set(m, kGicrIcenabler0, ~r.isenabler0);
    redist_set(m, kGicrIsenabler0, r.isenabler0);
    redist_set(m, kGicrCtlr, r.ctlr);
  }
  for (uint32_t w = kFirstSpiWord; w < GicDistributorState::kWords; w++) {
    dist_set(kGicdIgroupr + 4 * w, d.igroupr[w]);
    dist_set(kGicdIgrpmodr + 4 * w, d.igrpmodr[w]);
  }
  for (uint32_t i = aarch64::kGicPrivateInterrupts / 16; i < d.icfgr.size(); i++) dist_set(kGicdIcfgr + 4 * i, d.icfgr[i]);
  for (uint32_t i = aarch64::kGicPrivateInterrupts / 4; i < d.ipriorityr.size(); i++) dist_set(kGicdIpriorityr + 4 * i, d.ipriorityr[i]);
  for (uint32_t i = 0; i < d.irouter.size(); i++) {
    const uint32_t at = kGicdIrouter + 8 * (aarch64::kGicPrivateInterrupts + i);
    dist_set(at, static_cast<uint32_t>(d.irouter[i]));
    dist_set(at + 4, static_cast<uint32_t>(d.irouter[i] >> 32));
  }
  for (uint32_t w = kFirstSpiWord; w < GicDistributorState::kWords; w++) {
    level_set(0, 32 * w, d.spi_line_level[w]);
    dist_set(kGicdIspendr + 4 * w, d.ispendr[w]);
    dist_set(kGicdIcactiver + 4 * w, ~d.isactiver[w]);
    dist_set(kGicdIsactiver + 4 * w, d.isactiver[w]);
    dist_set(kGicdIcenabler + 4 * w, ~d.isenabler[w]);
    dist_set(kGicdIsenabler + 4 * w, d.isenabler[w]);
  }
  dist_set(kGicdCtlr, d.ctlr);
  for (const auto& cpu : s.cpus) {
    const uint64_t m = cpu.mpidr;
    const GicCpuInterfaceState& i = cpu.cpu_interface;
    icc_set(m, kIccSre, i.sre);
    icc_set(m, kIccCtlr, i.ctlr);  // KVM refuses other PRIbits/IDbits than this host's
    icc_set(m, kIccPmr, i.pmr);
    icc_set(m, kIccBpr0, i.bpr0);
    icc_set(m, kIccBpr1, i.bpr1);
    for (int n = 0; n < i.ap_registers(); n++) {
      icc_set(m, icc_ap0r(n), i.ap0r[n]);
      icc_set(m, icc_ap1r(n), i.ap1r[n]);
    }
    icc_set(m, kIccIgrpen0, i.igrpen0);
    icc_set(m, kIccIgrpen1, i.igrpen1);
  }
}

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

namespace {

/** What load_state() hands restore_state(): the decoded state, checked against this vCPU. */
struct LoadedArm64VcpuState : LoadedVcpuState {
  arm64::VcpuState state;
};

/** KVM_GET_REG_LIST: every register KVM_{GET,SET}_ONE_REG reaches on this vCPU. */
std::vector<uint64_t> register_list(int fd) {
  kvm_reg_list probe{};
  probe.n = 0;
  // E2BIG with n set to the count is the expected answer.
  if (::ioctl(fd, KVM_GET_REG_LIST, &probe) == 0) return {};
  if (errno != E2BIG) throw VmrunError(ErrorCode::Host, errno_message("KVM GET_REG_LIST failed", errno));
  if (probe.n > arm64::VcpuState::kMaxRegisters)
    throw VmrunError(ErrorCode::Host, "KVM lists " + std::to_string(probe.n) + " vCPU registers, more than vmrun saves (" + std::to_string(arm64::VcpuState::kMaxRegisters) + ")");
  std::vector<uint64_t> buf(1 + probe.n);
  auto* list = reinterpret_cast<kvm_reg_list*>(buf.data());
  list->n = probe.n;
  checked_ioctl(fd, KVM_GET_REG_LIST, list, "GET_REG_LIST");
  return std::vector<uint64_t>(list->reg, list->reg + list->n);
}

std::vector<uint8_t> get_any_register(int fd, uint64_t id) {
  const size_t size = arm64::register_size(id);
  if (size > arm64::VcpuState::kMaxRegisterBytes) throw VmrunError(ErrorCode::Host, "KVM lists register " + hex(id) + " of " + std::to_string(size) + " bytes");
  std::vector<uint8_t> value(size);
  kvm_one_reg reg{id, reinterpret_cast<uint64_t>(value.data())};
  checked_ioctl(fd, KVM_GET_ONE_REG, &reg, "GET_ONE_REG");
  return value;
}

}  // namespace

// Every register KVM_GET_REG_LIST lists: the core registers (x0-x30, SP, PC, PSTATE,
// SP_EL1, ELR_EL1, SPSRs, the 128-bit V0-V31, FPSR, FPCR), the firmware pseudo-
// registers (PSCI version, SMCCC workaround levels: KVM documents them as state to
// save and restore, hypercalls.rst), and every system register KVM emulates or
// context-switches. Only the counters are left out of the list, by design rather than
// by KVM's say-so: KVM_REG_ARM_TIMER_CNT is host time minus the VM's offset, restored
// once for the whole VM (KvmArm64Vm), and KVM_REG_ARM_PTIMER_CNT (6.4+) is the same
// for the physical counter, which a write would re-offset; CNTV_CTL/CNTV_CVAL are
// saved by name so they can be restored after everything else. No SVE (the vCPU is
// not created with it, so no vector-length register needs setting before finalize).
StateBlob KvmArm64Vcpu::save_state() {
  arm64::VcpuState s;
  kvm_mp_state mp{};
  checked_ioctl(area_.fd(), KVM_GET_MP_STATE, &mp, "GET_MP_STATE");
  s.mp_state = mp.mp_state;
  for (uint64_t id : register_list(area_.fd())) {
    if (arm64::is_named_or_host_time_register(id)) continue;
    s.registers.push_back({id, get_any_register(area_.fd(), id)});
  }
  s.timer.ctl = get_register(arm64::kTimerCtl);
  s.timer.cval = get_register(arm64::kTimerCval);
  s.timer.count = get_register(arm64::kTimerCnt);
  kvm_vcpu_events events{};
  checked_ioctl(area_.fd(), KVM_GET_VCPU_EVENTS, &events, "GET_VCPU_EVENTS");
  s.events.serror_pending = events.exception.serror_pending;
  s.events.serror_has_esr = events.exception.serror_has_esr;
  s.events.ext_dabt_pending = events.exception.ext_dabt_pending;
  s.events.serror_esr = events.exception.serror_esr;
  return arm64::encode_vcpu_state(s);
}

std::unique_ptr<LoadedVcpuState> KvmArm64Vcpu::load_state(const StateBlob& blob) {
  const std::string what = "vCPU " + std::to_string(index_) + " state";
  auto loaded = std::make_unique<LoadedArm64VcpuState>();
  loaded->state = arm64::decode_vcpu_state(blob, what);
  const std::vector<uint64_t> listed = register_list(area_.fd());
  std::vector<arm64::VcpuState::Register> identity;
  for (uint64_t id : listed)
    if (arm64::is_cpu_identity_register(id)) identity.push_back({id, get_any_register(area_.fd(), id)});
  arm64::check_vcpu_state(loaded->state, listed, identity, what);
  for (const auto& reg : loaded->state.registers) {
    if (reg.id != arm64::kMpidr) continue;
    uint64_t saved;
    std::memcpy(&saved, reg.value.data(), sizeof saved);
    const uint64_t here = get_register(arm64::kMpidr);
    if (saved != here)
      throw VmrunError(ErrorCode::Snapshot, what + ": MPIDR_EL1 was " + hex(saved) + " at save and is " + hex(here) + " here (vCPUs are created in another order?)");
  }
  return loaded;
}

void KvmArm64Vcpu::restore_state(const LoadedVcpuState& loaded) {
  const auto* l = dynamic_cast<const LoadedArm64VcpuState*>(&loaded);
  if (!l) throw VmrunError(ErrorCode::Internal, "an arm64 vCPU was handed another backend's state");
  const arm64::VcpuState& s = l->state;
  // KVM_GET_REG_LIST's order: core, firmware, FP/SIMD, then system registers. The VM's
  // state (vGIC, counter) is already in place (KvmArm64Vm::restore_state says why).
  for (const auto& reg : s.registers) {
    kvm_one_reg one{reg.id, reinterpret_cast<uint64_t>(reg.value.data())};
    if (::ioctl(area_.fd(), KVM_SET_ONE_REG, &one) != 0)
      throw VmrunError(ErrorCode::Snapshot, errno_message("vCPU " + std::to_string(index_) + ": KVM refused register " + arm64::describe_register(reg.id) + " from the snapshot", errno));
  }
  // A pending SError after the registers it is delivered against (as KVM's own
  // selftests order it). A syndrome needs RAS in the host: KVM refuses it otherwise.
  kvm_vcpu_events events{};
  events.exception.serror_pending = s.events.serror_pending;
  events.exception.serror_has_esr = s.events.serror_has_esr;
  events.exception.ext_dabt_pending = s.events.ext_dabt_pending;
  events.exception.serror_esr = s.events.serror_esr;
  if (::ioctl(area_.fd(), KVM_SET_VCPU_EVENTS, &events) != 0)
    throw VmrunError(ErrorCode::Snapshot, errno_message("vCPU " + std::to_string(index_) + ": KVM refused the pending exceptions from the snapshot" +
                                                            (s.events.serror_has_esr ? " (an SError with a syndrome needs a host CPU with RAS)" : ""),
                                                        errno));
  // The timer last, against the counter the VM restored: CVAL, then CTL (which enables it).
  set_register(arm64::kTimerCval, s.timer.cval);
  set_register(arm64::kTimerCtl, s.timer.ctl);
  kvm_mp_state mp{};
  mp.mp_state = s.mp_state;
  checked_ioctl(area_.fd(), KVM_SET_MP_STATE, &mp, "SET_MP_STATE");
}

}  // namespace kvm
}  // namespace vmrun
