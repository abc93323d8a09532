// Capture and restore of a KVM x86_64 vCPU's complete state, in the orders the
// production VMMs settled on (see notes/snapshot-state.md for why each order matters).
#pragma once
#include "backend/hypervisor.h"

namespace vmrun::kvm {
class KvmHypervisor;
}

namespace vmrun::kvm {

StateBlob save_vcpu_state(KvmHypervisor& hypervisor, int vcpu_fd);
void restore_vcpu_state(KvmHypervisor& hypervisor, int vcpu_fd, const StateBlob& blob);

}  // namespace vmrun::kvm
