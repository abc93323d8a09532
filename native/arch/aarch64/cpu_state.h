// arm64 vCPU state the VMM sets at boot (Linux's arm64 boot protocol): where the
// vCPU starts and what it finds in x0-x3. Everything else is KVM_ARM_VCPU_INIT's
// reset state (EL1h, interrupts masked, MMU off), which the protocol asks for.
#pragma once
#include <cstdint>

namespace vmrun::aarch64 {

struct StartState {
  uint64_t pc = 0;
  uint64_t x0 = 0;  // Linux: the device tree's guest-physical address
  uint64_t x1 = 0;
  uint64_t x2 = 0;
  uint64_t x3 = 0;
};

}  // namespace vmrun::aarch64
