// Capture and restore of a KVM x86_64 vCPU's complete state, in the orders the
// production VMMs settled on (see notes/snapshot-state.md for why each order matters).
#pragma once
#include <vector>

#include "backend/hypervisor.h"
#include "backend/kvm/kvm_uapi.h"

namespace vmrun::kvm {
class KvmHypervisor;
}

namespace vmrun::kvm {

StateBlob save_vcpu_state(KvmHypervisor& hypervisor, int vcpu_fd);
void restore_vcpu_state(KvmHypervisor& hypervisor, int vcpu_fd, const StateBlob& blob);
/** The CPUID a vCPU presents now (KVM_GET_CPUID2): on some hosts (PVM) the host's own. */
std::vector<kvm_cpuid_entry2> current_cpuid(int vcpu_fd);
/** Throws if the saved CPUID claims features `supported` lacks. */
void check_cpuid_compatible(const std::vector<kvm_cpuid_entry2>& supported, const StateBlob& blob);

}  // namespace vmrun::kvm
