// What the VMM asks of an arm64 vCPU beyond the architecture-neutral Vcpu: the Linux
// boot protocol's start registers (vCPU 0; the others wait for PSCI CPU_ON). Any
// backend that runs arm64 guests (KVM today, Hypervisor.framework later) implements
// it; the VMM reaches it through Vcpu::arm64() or arm64_vcpu().
#pragma once
#include "arch/aarch64/cpu_state.h"
#include "backend/hypervisor.h"

namespace vmrun {

class Arm64Vcpu : public Vcpu {
 public:
  Arm64Vcpu* arm64() override { return this; }
  /** PC and x0-x3 for vCPU 0 (Linux's boot protocol). */
  virtual void set_start_state(const aarch64::StartState& state) = 0;
};

/** The arm64 interface of a vCPU of an arm64 machine; a vCPU of another architecture is a bug here. */
inline Arm64Vcpu& arm64_vcpu(Vcpu& vcpu) {
  if (Arm64Vcpu* a = vcpu.arm64()) return *a;
  throw VmrunError(ErrorCode::Internal, "arm64 state asked of a vCPU of another architecture");
}

}  // namespace vmrun
