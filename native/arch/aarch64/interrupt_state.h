// The GICv3 state and the VM-wide counter an arm64 snapshot carries, as plain structs
// with named fields (x86's counterpart: backend/kvm/x86_64/vcpu_state_codec.h), and
// their snapshot encoding. Captured and restored by backend/kvm/aarch64 (KvmArm64Vm);
// each vCPU's own timer registers (CNTV_CTL, CNTV_CVAL, its view of the counter) are
// in its vCPU state (backend/kvm/aarch64/vcpu_state_codec.h). Measured in an L1
// (notes/arm64-harness.md): every group below reads and writes on KVM arm64 6.1.
//
// Where each part comes from (KVM's VGIC device, KVM_{GET,SET}_DEVICE_ATTR on the
// VGIC_V3 device fd, attr = register offset | (MPIDR affinity << 32) where per-vCPU):
//   distributor        KVM_DEV_ARM_VGIC_GRP_DIST_REGS        GICD_* offsets
//   redistributor      KVM_DEV_ARM_VGIC_GRP_REDIST_REGS      GICR_* (SGI frame at +64 KiB)
//   CPU interface      KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS      ICC_* system-register encodings
//   line levels        KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO       level-triggered inputs, 32 per attr
//                      (the virtual timer's PPI shows here, not in ISPENDR)
//   guest counter      KVM_GET_ONE_REG KVM_REG_ARM_TIMER_CNT (vCPU 0; VM-wide in KVM)
//   counter frequency  CNTFRQ_EL0 as the host's user space reads it
// Restore order KVM requires (KvmArm64Vm::restore_state says why): vCPUs created and
// KVM_ARM_VCPU_INIT-ed, the VGIC created with its addresses and
// KVM_DEV_ARM_VGIC_CTRL_INIT, then the counter, redistributors, distributor, CPU
// interfaces (ICC_SRE_EL1 and ICC_CTLR_EL1 first), then the vCPU registers and the
// timers. No ITS is created, so there are no LPIs and no pending tables to save
// (KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "arch/aarch64/layout.h"
#include "backend/hypervisor.h"

namespace vmrun::aarch64 {

/** Registers of the GICv3 distributor for kGicInterrupts interrupts (words for IDs 0-31 are RAZ/WI with affinity routing). */
struct GicDistributorState {
  static constexpr uint32_t kWords = kGicInterrupts / 32;  // one bit per interrupt
  uint32_t ctlr = 0;                                       // GICD_CTLR (0x0000)
  uint32_t iidr = 0;                                       // GICD_IIDR (0x0008): KVM's implementation revision
  std::array<uint32_t, kWords> igroupr{};                  // GICD_IGROUPR<n> (0x0080)
  std::array<uint32_t, kWords> isenabler{};                // GICD_ISENABLER<n> (0x0100)
  std::array<uint32_t, kWords> ispendr{};                  // GICD_ISPENDR<n> (0x0200): the pending latch
  std::array<uint32_t, kWords> isactiver{};                // GICD_ISACTIVER<n> (0x0300)
  std::array<uint32_t, kGicInterrupts / 4> ipriorityr{};   // GICD_IPRIORITYR<n> (0x0400), 8 bits each
  std::array<uint32_t, kGicInterrupts / 16> icfgr{};       // GICD_ICFGR<n> (0x0C00), 2 bits each
  std::array<uint32_t, kWords> igrpmodr{};                 // GICD_IGRPMODR<n> (0x0D00)
  std::array<uint64_t, kGicInterrupts - kGicPrivateInterrupts> irouter{};  // GICD_IROUTER<n> (0x6100), per SPI
  std::array<uint32_t, kWords> spi_line_level{};           // LEVEL_INFO: the SPIs' input lines (word 0 unused)
};

/** One vCPU's redistributor: its SGI/PPI registers (the SGI_base frame) and control. */
struct GicRedistributorState {
  uint32_t ctlr = 0;               // GICR_CTLR (0x0000)
  uint32_t waker = 0;              // GICR_WAKER (0x0014): ProcessorSleep, ChildrenAsleep
  uint64_t propbaser = 0;          // GICR_PROPBASER (0x0070): LPIs, 0 without an ITS
  uint64_t pendbaser = 0;          // GICR_PENDBASER (0x0078)
  uint32_t igroupr0 = 0;           // GICR_IGROUPR0 (SGI frame 0x0080)
  uint32_t isenabler0 = 0;         // GICR_ISENABLER0 (0x0100)
  uint32_t ispendr0 = 0;           // GICR_ISPENDR0 (0x0200): the pending latch
  uint32_t isactiver0 = 0;         // GICR_ISACTIVER0 (0x0300)
  std::array<uint32_t, 8> ipriorityr{};  // GICR_IPRIORITYR0-7 (0x0400)
  uint32_t icfgr0 = 0;             // GICR_ICFGR0 (0x0C00): SGIs, read-only
  uint32_t icfgr1 = 0;             // GICR_ICFGR1 (0x0C04): PPIs
  uint32_t igrpmodr0 = 0;          // GICR_IGRPMODR0 (0x0D00)
  uint32_t private_line_level = 0; // LEVEL_INFO for interrupts 0-31 (the timer's PPI)
};

/** One vCPU's GIC CPU interface (ICC_*_EL1 system registers, non-secure EL1 view). */
struct GicCpuInterfaceState {
  uint64_t sre = 0;                 // ICC_SRE_EL1 (restore first)
  uint64_t ctlr = 0;                // ICC_CTLR_EL1 (then this: PRIbits sizes the AP registers)
  uint64_t pmr = 0;                 // ICC_PMR_EL1
  uint64_t bpr0 = 0;                // ICC_BPR0_EL1
  uint64_t bpr1 = 0;                // ICC_BPR1_EL1
  uint64_t igrpen0 = 0;             // ICC_IGRPEN0_EL1
  uint64_t igrpen1 = 0;             // ICC_IGRPEN1_EL1
  std::array<uint64_t, 4> ap0r{};   // ICC_AP0R<n>_EL1 (ap_registers() of them are real)
  std::array<uint64_t, 4> ap1r{};   // ICC_AP1R<n>_EL1
  /** How many ICC_AP{0,1}R<n>_EL1 exist: 1, 2 or 4 for 5, 6 or 7 priority bits (ICC_CTLR_EL1.PRIbits + 1). */
  int ap_registers() const {
    const int bits = static_cast<int>((ctlr >> 8) & 7) + 1;
    return bits >= 7 ? 4 : bits == 6 ? 2 : 1;
  }
};

/** Everything of the interrupt controller and the VM-wide counter an arm64 snapshot holds. */
struct InterruptState {
  /** 1: the layout above, one tagged record per field (encode_interrupt_state). */
  static constexpr uint32_t kVersion = 1;
  GicDistributorState distributor;
  struct PerCpu {
    /** MPIDR_EL1 of the vCPU (index i of `cpus` is vCPU i): the key of the per-vCPU attributes. */
    uint64_t mpidr = 0;
    GicRedistributorState redistributor;
    GicCpuInterfaceState cpu_interface;
  };
  std::vector<PerCpu> cpus;
  /** CNTFRQ_EL0 at save: a restore on a host whose counter runs at another frequency is refused. */
  uint64_t counter_frequency_hz = 0;
  /**
   * The guest's virtual counter (CNTVCT_EL0) when the vCPUs were paused. A restore
   * continues it from here: KVM_ARM_SET_COUNTER_OFFSET where the host has
   * KVM_CAP_COUNTER_OFFSET (6.4+), else by writing KVM_REG_ARM_TIMER_CNT (6.1).
   */
  uint64_t guest_counter = 0;
};

/** The MPIDR affinity fields as the VGIC attributes want them (Aff3..Aff0 in 32 bits). */
constexpr uint64_t vgic_mpidr(uint64_t mpidr) { return ((mpidr >> 8) & 0xFF000000ULL) | (mpidr & 0xFFFFFFULL); }

StateBlob encode_interrupt_state(const InterruptState& state);
/**
 * Decodes and checks (vCPU count, distinct MPIDRs, a counter frequency) without
 * touching any VM; throws VmrunError(Snapshot) naming "GIC state" for anything else.
 */
InterruptState decode_interrupt_state(const StateBlob& blob);

}  // namespace vmrun::aarch64
