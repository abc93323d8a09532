// Capture and restore of KVM x86_64 VM-wide state: PIT, kvmclock, PIC and IOAPIC.
#pragma once
#include "backend/hypervisor.h"

namespace vmrun::kvm {

StateBlob save_vm_state(int vm_fd);
void restore_vm_state(int vm_fd, const StateBlob& blob, bool catch_up_wall_clock);

}  // namespace vmrun::kvm
