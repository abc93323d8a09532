// A KVM x86_64 vCPU's saved state as a plain struct with named fields, its snapshot
// encoding, and the checks made against a host before any of it is applied. Pure
// functions of bytes and structs (no ioctl): the C++ unit tests and the fuzz targets
// use them directly.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/hypervisor.h"
#include "backend/kvm/kvm_uapi.h"

namespace vmrun::kvm {

struct VcpuState {
  /** 1: one tagged record per field, in the order below. */
  static constexpr uint32_t kVersion = 1;
  static constexpr uint32_t kMaxCpuidEntries = 512;
  static constexpr uint32_t kMaxMsrs = 4096;
  static constexpr size_t kMaxXsaveBytes = 1 << 20;

  kvm_mp_state mp_state{};
  kvm_regs regs{};
  kvm_sregs sregs{};
  std::vector<uint8_t> xsave;  // KVM_GET_XSAVE (4 KiB) or KVM_GET_XSAVE2 (larger)
  kvm_xcrs xcrs{};
  kvm_debugregs debugregs{};
  kvm_lapic_state lapic{};
  uint32_t tsc_khz = 0;  // 0: the saving host could not tell
  std::vector<kvm_cpuid_entry2> cpuid;
  std::vector<kvm_msr_entry> msrs;
  kvm_vcpu_events events{};
};

StateBlob encode_vcpu_state(const VcpuState& state);
/** Decodes and bounds every record; throws VmrunError(Snapshot) for anything else. */
VcpuState decode_vcpu_state(const StateBlob& blob);

/** Throws if the saved CPUID claims features `supported` lacks. */
void check_cpuid_compatible(const std::vector<kvm_cpuid_entry2>& supported, const VcpuState& saved);

/** The most a saved TSC frequency may differ from the host's and still run unscaled. */
constexpr uint32_t kTscTolerancePpM = 250;
enum class TscPlan { Keep, Scale };
/**
 * What a restore must do about the guest's TSC frequency: Keep it when the host's is
 * within kTscTolerancePpM of the saved one (or either is unknown), Scale it with
 * KVM_SET_TSC_KHZ when KVM can (`tsc_control`); otherwise throws VmrunError(Snapshot).
 */
TscPlan plan_tsc(uint32_t saved_khz, uint32_t host_khz, bool tsc_control);

}  // namespace vmrun::kvm
