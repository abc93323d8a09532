#include "backend/kvm/x86_64/vm_state.h"

#include "backend/kvm/kvm_uapi.h"

#include "backend/kvm/kvm_fd.h"
#include "common/state_codec.h"

namespace vmrun::kvm {

namespace {
constexpr uint32_t kVersion = 1;
enum Tag : uint32_t { kPit = 1, kClock, kPicMaster, kPicSlave, kIoapic };

kvm_irqchip get_chip(int fd, uint32_t id) {
  kvm_irqchip chip{};
  chip.chip_id = id;
  checked_ioctl(fd, KVM_GET_IRQCHIP, &chip, "GET_IRQCHIP");
  return chip;
}
}  // namespace

StateBlob save_vm_state(int fd) {
  StateWriter w(kVersion);
  kvm_pit_state2 pit{};
  checked_ioctl(fd, KVM_GET_PIT2, &pit, "GET_PIT2");
  w.record(kPit, pit);
  kvm_clock_data clock{};
  checked_ioctl(fd, KVM_GET_CLOCK, &clock, "GET_CLOCK");
  w.record(kClock, clock);
  w.record(kPicMaster, get_chip(fd, KVM_IRQCHIP_PIC_MASTER));
  w.record(kPicSlave, get_chip(fd, KVM_IRQCHIP_PIC_SLAVE));
  w.record(kIoapic, get_chip(fd, KVM_IRQCHIP_IOAPIC));
  return w.take();
}

void restore_vm_state(int fd, const StateBlob& blob, bool catch_up_wall_clock) {
  StateReader r(blob, "VM state", kVersion);
  auto pit = r.expect_obj<kvm_pit_state2>(kPit);
  auto clock = r.expect_obj<kvm_clock_data>(kClock);
  auto pic_master = r.expect_obj<kvm_irqchip>(kPicMaster);
  auto pic_slave = r.expect_obj<kvm_irqchip>(kPicSlave);
  auto ioapic = r.expect_obj<kvm_irqchip>(kIoapic);
  if (pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER || pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE || ioapic.chip_id != KVM_IRQCHIP_IOAPIC)
    throw VmrunError(ErrorCode::Snapshot, "VM state: interrupt controller records are out of order");
  checked_ioctl(fd, KVM_SET_PIT2, &pit, "SET_PIT2");
  // flags 0: the guest's clock continues from where it was saved, with no jump for the
  // time the snapshot spent on disk. KVM_CLOCK_REALTIME (when the save recorded wall
  // time) makes KVM add the wall time elapsed since then.
  kvm_clock_data set{};
  set.clock = clock.clock;
  if (catch_up_wall_clock) {
    if (!(clock.flags & KVM_CLOCK_REALTIME))
      throw VmrunError(ErrorCode::Snapshot, "this snapshot did not record wall-clock time, so its clock cannot catch up");
    set.flags = KVM_CLOCK_REALTIME;
    set.realtime = clock.realtime;
  }
  checked_ioctl(fd, KVM_SET_CLOCK, &set, "SET_CLOCK");
  checked_ioctl(fd, KVM_SET_IRQCHIP, &pic_master, "SET_IRQCHIP");
  checked_ioctl(fd, KVM_SET_IRQCHIP, &pic_slave, "SET_IRQCHIP");
  checked_ioctl(fd, KVM_SET_IRQCHIP, &ioapic, "SET_IRQCHIP");
}

}  // namespace vmrun::kvm
