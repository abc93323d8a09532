#include "backend/kvm/kvm_vm.h"

#include "backend/kvm/kvm_uapi.h"

#include "backend/kvm/kvm_hypervisor.h"
#include "backend/kvm/kvm_vcpu.h"
#include "backend/kvm/kvm_vm_common.h"
#include "backend/kvm/x86_64/vm_state.h"

#include <sys/eventfd.h>

namespace vmrun::kvm {

KvmVm::KvmVm(KvmHypervisor& hypervisor) : hypervisor_(hypervisor) {
  fd_ = Fd(checked_ioctl(hypervisor.fd(), KVM_CREATE_VM, 0, "CREATE_VM"));
  checked_ioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(kTssAddress), "SET_TSS_ADDR");
  uint64_t identity = kIdentityMapAddress;
  checked_ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &identity, "SET_IDENTITY_MAP_ADDR");
}

void KvmVm::map_memory(const GuestMemory& memory) { map_guest_memory(fd_.get(), memory); }

void KvmVm::create_interrupt_controller() {
  checked_ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0, "CREATE_IRQCHIP");
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  checked_ioctl(fd_.get(), KVM_CREATE_PIT2, &pit, "CREATE_PIT2");
}

std::unique_ptr<Vcpu> KvmVm::create_vcpu(int index, int count, VcpuSetup setup) {
  return std::make_unique<KvmVcpu>(hypervisor_, *this, index, count, setup);
}

void KvmVm::set_irq_line(uint32_t gsi, bool level) {
  kvm_irq_level irq{};
  irq.irq = gsi;
  irq.level = level ? 1 : 0;
  checked_ioctl(fd_.get(), KVM_IRQ_LINE, &irq, "IRQ_LINE");
}


std::unique_ptr<InterruptEvent> KvmVm::create_interrupt_event(uint32_t gsi) { return create_irqfd(fd_.get(), gsi); }

std::unique_ptr<NotifyEvent> KvmVm::create_notify_event(uint64_t address, uint32_t value) { return create_ioeventfd(fd_.get(), address, value); }

StateBlob KvmVm::save_state() { return save_vm_state(fd_.get()); }

void KvmVm::restore_state(const StateBlob& blob, bool catch_up_wall_clock) { restore_vm_state(fd_.get(), blob, catch_up_wall_clock); }

}  // namespace vmrun::kvm
