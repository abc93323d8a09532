// A KVM arm64 vCPU's saved state as a plain struct with named fields, its snapshot
// encoding, and the checks made against a fresh vCPU before any of it is applied.
// Pure functions of bytes and structs (no ioctl, no arm64 headers): the native unit
// tests and the fuzz targets run them on any host. KVM's register ids are spelled out
// here (Documentation/virt/kvm/api.rst, KVM_SET_ONE_REG) for the same reason.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backend/hypervisor.h"

namespace vmrun::kvm::arm64 {

// KVM_{GET,SET}_ONE_REG ids on arm64: architecture, size and coprocessor fields.
constexpr uint64_t kRegArchMask = 0xFF00'0000'0000'0000ULL;
constexpr uint64_t kRegArchArm64 = 0x6000'0000'0000'0000ULL;  // KVM_REG_ARM64
constexpr uint64_t kRegSizeMask = 0x00F0'0000'0000'0000ULL;   // KVM_REG_SIZE_MASK
constexpr int kRegSizeShift = 52;                              // KVM_REG_SIZE_SHIFT
constexpr uint64_t kRegSizeU64 = 0x0030'0000'0000'0000ULL;     // KVM_REG_SIZE_U64
constexpr uint64_t kRegCoprocMask = 0x0000'0000'0FFF'0000ULL;  // KVM_REG_ARM_COPROC_MASK
constexpr uint64_t kRegSysreg = 0x0013ULL << 16;               // KVM_REG_ARM64_SYSREG
constexpr uint64_t kRegDemux = 0x0011ULL << 16;                // KVM_REG_ARM_DEMUX (CCSIDR_EL1 by CSSELR)

/** ARM64_SYS_REG(op0, op1, crn, crm, op2). */
constexpr uint64_t sys_reg(uint64_t op0, uint64_t op1, uint64_t crn, uint64_t crm, uint64_t op2) {
  return kRegArchArm64 | kRegSizeU64 | kRegSysreg | (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2;
}
// The virtual timer (KVM_REG_ARM_TIMER_*; CVAL and CNT have each other's encodings, as KVM's ABI has it).
constexpr uint64_t kTimerCtl = sys_reg(3, 3, 14, 3, 1);
constexpr uint64_t kTimerCnt = sys_reg(3, 3, 14, 3, 2);
constexpr uint64_t kTimerCval = sys_reg(3, 3, 14, 0, 2);
// The physical counter (KVM_REG_ARM_PTIMER_CNT, listed by 6.4+ kernels).
constexpr uint64_t kPtimerCnt = sys_reg(3, 3, 14, 0, 1);
constexpr uint64_t kMpidr = sys_reg(3, 0, 0, 0, 5);

/** Bytes a register of this id holds (KVM_REG_SIZE): 1 << the size field. */
constexpr size_t register_size(uint64_t id) { return size_t{1} << ((id & kRegSizeMask) >> kRegSizeShift); }
/**
 * True for the registers that identify the CPU rather than hold guest state (the
 * ID space, op0=3 op1=0 CRn=0, and the demultiplexed CCSIDRs), MPIDR_EL1 excepted:
 * KVM accepts a write only of the value it already has, so a restore compares them
 * first and refuses another CPU in one line.
 */
constexpr bool is_cpu_identity_register(uint64_t id) {
  if ((id & kRegCoprocMask) == kRegDemux) return true;
  if ((id & kRegCoprocMask) != kRegSysreg || id == kMpidr) return false;
  return ((id >> 14) & 3) == 3 && ((id >> 11) & 7) == 0 && ((id >> 7) & 15) == 0;
}

struct VcpuState {
  /** 1: mp_state, register ids, register values, timer; one tagged record each. 2: + events. */
  static constexpr uint32_t kVersion = 2;
  /** An SError's syndrome as KVM takes it: the ISS field of ESR_ELx (KVM refuses more bits). */
  static constexpr uint64_t kSerrorEsrMask = 0x01FF'FFFFULL;
  /** KVM 6.1 lists about 250 registers without SVE; room for SVE's 32 Z + 16 P per slice. */
  static constexpr uint32_t kMaxRegisters = 4096;
  /** The largest register KVM has: 2048 bits (an SVE Z register). */
  static constexpr size_t kMaxRegisterBytes = 256;

  struct Register {
    uint64_t id = 0;
    std::vector<uint8_t> value;  // register_size(id) bytes, as KVM_GET_ONE_REG wrote them
  };

  /** KVM_GET_MP_STATE: 0 runnable, 5 stopped (a secondary the guest has not powered on), 9 suspended. */
  uint32_t mp_state = 0;
  /**
   * Every register KVM_GET_REG_LIST listed, in its order (core, firmware, FP/SIMD,
   * system registers), except the timer's three and the physical counter.
   */
  std::vector<Register> registers;
  /** The EL1 virtual timer. `count` is this vCPU's CNTVCT_EL0 at save (the counter is VM-wide: the VM's state restores it). */
  struct Timer {
    uint64_t ctl = 0;   // CNTV_CTL_EL0: ENABLE, IMASK (ISTATUS is recomputed)
    uint64_t cval = 0;  // CNTV_CVAL_EL0, in guest counter ticks
    uint64_t count = 0;
  } timer;
  /**
   * Exceptions KVM holds for the guest that it has not taken yet (KVM_GET_VCPU_EVENTS):
   * an SError a device or the host raised must still be taken after a restore, not
   * lost with the process that saved it.
   */
  struct Events {
    bool serror_pending = false;
    /** serror_esr is the syndrome to deliver (a host with RAS: KVM_CAP_ARM_INJECT_SERROR_ESR); else KVM picks it. */
    bool serror_has_esr = false;
    /** An external data abort to inject (set by the VMM for an MMIO access it refuses; vmrun never does). */
    bool ext_dabt_pending = false;
    uint64_t serror_esr = 0;
  } events;
};

/** Registers a capture leaves out of VcpuState::registers (the timer is named; the physical counter is host time). */
constexpr bool is_named_or_host_time_register(uint64_t id) { return id == kTimerCtl || id == kTimerCnt || id == kTimerCval || id == kPtimerCnt; }

StateBlob encode_vcpu_state(const VcpuState& state);
/** Decodes and bounds every record (ids of arm64, sizes as the id says, no duplicates); throws VmrunError(Snapshot). */
VcpuState decode_vcpu_state(const StateBlob& blob, const std::string& what);

/**
 * Refuses (VmrunError Snapshot, one line) a saved state this vCPU cannot take: a
 * register its KVM does not list (`listed`, KVM_GET_REG_LIST of the fresh vCPU), or a
 * CPU identity register whose value differs from the fresh vCPU's (`identity`: the
 * fresh vCPU's value of every is_cpu_identity_register id it lists).
 */
void check_vcpu_state(const VcpuState& saved, const std::vector<uint64_t>& listed, const std::vector<VcpuState::Register>& identity,
                      const std::string& what);

/** An id as KVM's documentation writes it, with the system-register name when it has one ("0x603000000013c005 (MPIDR_EL1)"). */
std::string describe_register(uint64_t id);

}  // namespace vmrun::kvm::arm64
