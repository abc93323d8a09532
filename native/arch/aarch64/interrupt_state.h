// The GICv3 and architected-timer state an arm64 snapshot must carry, as plain
// structs with named fields (x86's counterpart: backend/kvm/x86_64/vcpu_state_codec.h).
// NOT WIRED YET: nothing captures, encodes or restores these (issue 14); they name
// what a capture must read, through which KVM interface, so that the snapshot code
// and the codec are written against one definition. Measured in an L1 (notes/
// arm64-harness.md): every group below reads and writes on KVM arm64 6.1.
//
// Where each part comes from (KVM's VGIC device, KVM_{GET,SET}_DEVICE_ATTR on the
// VGIC_V3 device fd, attr = register offset | (MPIDR << 32) where per-vCPU):
//   distributor        KVM_DEV_ARM_VGIC_GRP_DIST_REGS        GICD_* offsets
//   redistributor      KVM_DEV_ARM_VGIC_GRP_REDIST_REGS      GICR_* (SGI frame at +64 KiB)
//   CPU interface      KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS      ICC_* system-register encodings
//   line levels        KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO       level-triggered inputs, 32 per attr
//                      (the virtual timer's PPI shows here, not in ISPENDR)
//   timer              KVM_{GET,SET}_ONE_REG                 KVM_REG_ARM_TIMER_CTL/CVAL/CNT
//   counter offset     KVM_ARM_SET_COUNTER_OFFSET (KVM_CAP_COUNTER_OFFSET, 6.4+), else
//                      writing KVM_REG_ARM_TIMER_CNT on each vCPU (6.1: the only way)
// Restore order KVM requires: vCPUs created and KVM_ARM_VCPU_INIT-ed, the VGIC
// created with its addresses and KVM_DEV_ARM_VGIC_CTRL_INIT, then distributor,
// redistributors, CPU interfaces (ICC_SRE_EL1 and ICC_CTLR_EL1 first), line levels,
// then the vCPU registers and the timer (CNT before CVAL/CTL, so a restored compare
// value is judged against the restored count).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "arch/aarch64/layout.h"

namespace vmrun::aarch64 {

/** Registers of the GICv3 distributor for kGicInterrupts interrupts (SPIs only: 32 up). */
struct GicDistributorState {
  static constexpr uint32_t kWords = kGicInterrupts / 32;  // one bit per interrupt
  uint32_t ctlr = 0;                                       // GICD_CTLR (0x0000)
  std::array<uint32_t, kWords> igroupr{};                  // GICD_IGROUPR<n> (0x0080)
  std::array<uint32_t, kWords> isenabler{};                // GICD_ISENABLER<n> (0x0100)
  std::array<uint32_t, kWords> ispendr{};                  // GICD_ISPENDR<n> (0x0200)
  std::array<uint32_t, kWords> isactiver{};                // GICD_ISACTIVER<n> (0x0300)
  std::array<uint32_t, kGicInterrupts / 4> ipriorityr{};   // GICD_IPRIORITYR<n> (0x0400), 8 bits each
  std::array<uint32_t, kGicInterrupts / 16> icfgr{};       // GICD_ICFGR<n> (0x0C00), 2 bits each
  std::array<uint32_t, kWords> igrpmodr{};                 // GICD_IGRPMODR<n> (0x0D00)
  std::array<uint64_t, kGicInterrupts - kGicPrivateInterrupts> irouter{};  // GICD_IROUTER<n> (0x6100), per SPI
  std::array<uint32_t, kWords> spi_line_level{};           // LEVEL_INFO: the SPIs' input lines
};

/** One vCPU's redistributor: its SGI/PPI registers (the SGI_base frame) and control. */
struct GicRedistributorState {
  uint32_t ctlr = 0;               // GICR_CTLR (0x0000)
  uint32_t waker = 0;              // GICR_WAKER (0x0014): ProcessorSleep, ChildrenAsleep
  uint64_t propbaser = 0;          // GICR_PROPBASER (0x0070): LPIs, 0 without an ITS
  uint64_t pendbaser = 0;          // GICR_PENDBASER (0x0078)
  uint32_t igroupr0 = 0;           // GICR_IGROUPR0 (SGI frame 0x0080)
  uint32_t isenabler0 = 0;         // GICR_ISENABLER0 (0x0100)
  uint32_t ispendr0 = 0;           // GICR_ISPENDR0 (0x0200)
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
  uint64_t ctlr = 0;                // ICC_CTLR_EL1 (then this: it sizes the AP registers)
  uint64_t pmr = 0;                 // ICC_PMR_EL1
  uint64_t bpr0 = 0;                // ICC_BPR0_EL1
  uint64_t bpr1 = 0;                // ICC_BPR1_EL1
  uint64_t igrpen0 = 0;             // ICC_IGRPEN0_EL1
  uint64_t igrpen1 = 0;             // ICC_IGRPEN1_EL1
  std::array<uint64_t, 4> ap0r{};   // ICC_AP0R<n>_EL1 (as many as ICC_CTLR_EL1.PRIbits implies)
  std::array<uint64_t, 4> ap1r{};   // ICC_AP1R<n>_EL1
};

/** One vCPU's EL1 virtual timer (the one Linux guests use). */
struct VirtualTimerState {
  uint64_t ctl = 0;     // CNTV_CTL_EL0: ENABLE, IMASK (ISTATUS is recomputed)
  uint64_t cval = 0;    // CNTV_CVAL_EL0: the compare value, in guest counter ticks
  uint64_t count = 0;   // CNTVCT_EL0 at save (KVM_REG_ARM_TIMER_CNT)
};

/** Everything interrupt- and time-related an arm64 snapshot holds besides the vCPU registers. */
struct InterruptState {
  /** 1: the layout above; a codec writes one tagged record per field. */
  static constexpr uint32_t kVersion = 1;
  uint32_t version = kVersion;
  GicDistributorState distributor;
  struct PerCpu {
    uint64_t mpidr = 0;  // MPIDR_EL1 affinity: the key of the per-vCPU attributes
    GicRedistributorState redistributor;
    GicCpuInterfaceState cpu_interface;
    VirtualTimerState timer;
  };
  std::vector<PerCpu> cpus;
  /** CNTFRQ_EL0 at save: a restore on a host with another counter frequency is refused. */
  uint64_t counter_frequency_hz = 0;
  /**
   * The VM's counter offset (host counter - guest counter) at save, when the host had
   * KVM_CAP_COUNTER_OFFSET; 0 and unused otherwise (the per-vCPU `timer.count` then
   * carries the guest's time).
   */
  uint64_t counter_offset = 0;
  bool counter_offset_api = false;
};

}  // namespace vmrun::aarch64
