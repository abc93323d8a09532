// The CPUID a vmrun vCPU sees: what KVM supports, with the per-vCPU topology filled in
// and the hypervisor bit set, so the guest finds kvm-clock and its own APIC ID.
#pragma once
#include "backend/kvm/kvm_uapi.h"

#include <vector>

namespace vmrun::kvm {

void patch_cpuid_for_vcpu(std::vector<kvm_cpuid_entry2>& entries, int index, int count);

/** Whether this host's CPU is AMD's (or Hygon's), whose KVM runs guests with SVM. */
bool host_uses_svm();

}  // namespace vmrun::kvm
