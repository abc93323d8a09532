// KVM steps that are the same on every architecture: opening /dev/kvm with its API
// version checked, registering guest RAM as memory slots, irqfd interrupt events and
// ioeventfd notifications.
#pragma once
#include <memory>
#include <string>

#include "backend/hypervisor.h"
#include "backend/kvm/kvm_fd.h"

namespace vmrun::kvm {

/** Opens the KVM device and checks its API version; throws VmrunError(Host) saying what to do. */
Fd open_kvm_device(const std::string& path);
/** KVM_CHECK_EXTENSION; 0 when absent or on error. */
int check_kvm_extension(int fd, long cap);
/** One memory slot per RAM region, in order. */
void map_guest_memory(int vm_fd, const GuestMemory& memory);
/** An eventfd bound to `gsi` with KVM_IRQFD: each trigger pulses the line, with no exit. */
std::unique_ptr<InterruptEvent> create_irqfd(int vm_fd, uint32_t gsi);
/**
 * The same eventfd, not yet bound: bind_irqfd binds it later (arm64 KVM refuses an
 * irqfd until the vGIC is initialised). A trigger before then is kept by the eventfd
 * and raises the line when it is bound.
 */
std::unique_ptr<InterruptEvent> create_unbound_irqfd(uint32_t gsi);
/** KVM_IRQFD: `event_fd` pulses `gsi` from now on. */
void bind_irqfd(int vm_fd, int event_fd, uint32_t gsi);
/** An eventfd KVM signals, with no exit, when the guest writes `value` to the 4-byte MMIO register at `address` (KVM_IOEVENTFD). */
std::unique_ptr<NotifyEvent> create_ioeventfd(int vm_fd, uint64_t address, uint32_t value);

}  // namespace vmrun::kvm
