// Capture and restore of a KVM x86_64 vCPU's complete state, in the orders the
// production VMMs settled on (see notes/snapshot-state.md for why each order matters).
// The state itself and its encoding: vcpu_state_codec.h.
#pragma once
#include <vector>

#include "backend/hypervisor.h"
#include "backend/kvm/kvm_uapi.h"
#include "backend/kvm/x86_64/vcpu_state_codec.h"

namespace vmrun::kvm {
class KvmHypervisor;
}

namespace vmrun::kvm {

/** A saved state checked against this host: what KvmVcpu::restore_state applies. */
struct KvmLoadedVcpuState : LoadedVcpuState {
  VcpuState state;
  TscPlan tsc = TscPlan::Keep;
};

VcpuState capture_vcpu_state(KvmHypervisor& hypervisor, int vcpu_fd);
/**
 * Decodes `blob` once and checks it against this host and a fresh vCPU (`vcpu_fd`):
 * CPUID features, XSAVE size, TSC frequency. Applies nothing.
 */
std::unique_ptr<KvmLoadedVcpuState> load_vcpu_state(KvmHypervisor& hypervisor, int vcpu_fd, const StateBlob& blob);
void apply_vcpu_state(KvmHypervisor& hypervisor, int vcpu_fd, const KvmLoadedVcpuState& loaded);
/** The CPUID a vCPU presents now (KVM_GET_CPUID2): on some hosts (PVM) the host's own. */
std::vector<kvm_cpuid_entry2> current_cpuid(int vcpu_fd);

}  // namespace vmrun::kvm
