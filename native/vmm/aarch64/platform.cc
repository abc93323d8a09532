// The arm64 machine, on QEMU virt's memory map (arch/aarch64/layout.h): RAM from
// 1 GiB, the in-kernel vGICv3, the 16550 console and vmrun's exit device on MMIO,
// virtio-mmio slots with an SPI each, all announced in a generated device tree that
// the Image loader places with the kernel. vCPU 0 starts at the kernel; the others
// stay powered off until the guest's PSCI CPU_ON. PSCI SYSTEM_OFF and SYSTEM_RESET
// reach the vCPU threads as the backend's system events and end the VM.
#include "arch/aarch64/layout.h"
#include "arch/aarch64/vcpu.h"
#include "common/error.h"
#include "devices/legacy/exit_port.h"
#include "loaders/linux/arm64_image.h"
#include "vmm/builder.h"
#include "vmm/irq_line.h"
#include "vmm/platform.h"

namespace vmrun {

namespace platform {

const char* machine_type() { return "arm64-virt"; }
int max_cpus() { return aarch64::kMaxCpus; }
bool has_gdb_stub() { return false; }

void check_kernel_format(KernelFormat format, const std::string& path) {
  if (format != KernelFormat::LinuxArm64Image)
    throw VmrunError(ErrorCode::KernelFormat, "kernel " + path + " is a " + kernel_format_name(format) +
                                                  " kernel; this machine runs arm64 guests from a Linux arm64 Image (arch/arm64/boot/Image)");
}

void place_ram(GuestMemory& memory) { memory.place_at(aarch64::kRamBase); }

size_t virtio_slot_count() { return aarch64::kVirtioMmioSlots; }
VirtioSlot virtio_slot(size_t index) {
  if (index >= virtio_slot_count()) throw VmrunError(ErrorCode::Internal, "more virtio devices than MMIO slots");
  return {aarch64::kVirtioMmioBase + index * aarch64::kVirtioMmioSlotSize, aarch64::kVirtioMmioSlotSize,
          aarch64::kVirtioMmioFirstSpi + static_cast<uint32_t>(index)};
}

}  // namespace platform

void MachineBuilder::add_platform_devices(Machine& m, uint64_t) {
  m.uart_ = std::make_shared<Uart16550>("uart0", std::make_shared<VmInterruptLine>(*m.vm_, aarch64::kUartSpi), m.console_.get());
  // 8 registers, as on a PC; the rest of the 4 KiB window the tree gives reads as nothing.
  m.mmio_bus_.add(aarch64::kUartBase, 8, m.uart_);
  m.mmio_bus_.add(aarch64::kExitDeviceBase, 4, std::make_shared<ExitPort>(&m));
}

GuestStart MachineBuilder::load_guest(Machine& m, const MachineConfig& config, const KernelImage& image, size_t virtio_devices) {
  Arm64LinuxBootInput in{&image.kernel, config.kernel_path, image.has_initrd ? &image.initrd : nullptr, config.cmdline, config.cpus,
                         static_cast<uint32_t>(virtio_devices)};
  const aarch64::StartState start = load_arm64_linux(in, m.memory_).start;
  GuestStart out;
  out.start_vcpu = [start](int index, Vcpu& vcpu) {
    if (index == 0) arm64_vcpu(vcpu).set_start_state(start);
  };
  return out;
}

}  // namespace vmrun
