// The x86_64 machine: a PC with the in-kernel PIC/IOAPIC/PIT, the console on COM1,
// the few legacy ports Linux and Hermit probe, the exit port, virtio-mmio windows in
// the 32-bit MMIO hole announced on the kernel command line, and the MP table.
#include <optional>

#include "arch/x86_64/layout.h"
#include "arch/x86_64/mptable.h"
#include "arch/x86_64/vcpu.h"
#include "common/error.h"
#include "common/hex.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/exit_port.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/pci_config_absent.h"
#include "loaders/hermit/hermit_boot.h"
#include "loaders/linux/linux_loader.h"
#include "vmm/builder.h"
#include "vmm/irq_line.h"
#include "vmm/platform.h"

namespace vmrun {

namespace {

constexpr uint16_t kCom1Port = 0x3F8;
constexpr uint32_t kCom1Irq = 4;

static_assert(x86::kVirtioMmioBase >= kMmioHoleStart &&
                  x86::kVirtioMmioBase + x86::kVirtioMmioSlots * x86::kVirtioMmioSlotSize <= x86::kIoapicAddress,
              "virtio-mmio windows lie in the MMIO hole, below the IOAPIC and LAPIC");

/** Linux's virtio_mmio.device=<size>@<base>:<irq> words for the first `count` slots (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES). */
std::string virtio_cmdline(size_t count) {
  std::string words;
  for (size_t i = 0; i < count; i++) {
    const platform::VirtioSlot slot = platform::virtio_slot(i);
    words += " virtio_mmio.device=" + std::to_string(slot.size >> 10) + "K@" + hex(slot.base) + ":" + std::to_string(slot.gsi);
  }
  return words;
}

}  // namespace

namespace platform {

const char* machine_type() { return "x86_64-pc"; }
int max_cpus() { return x86::kMaxMpTableCpus; }
bool has_gdb_stub() { return true; }

void check_kernel_format(KernelFormat format, const std::string& path) {
  if (format == KernelFormat::LinuxArm64Image)
    throw VmrunError(ErrorCode::KernelFormat, "kernel " + path + " is an arm64 Linux Image; this machine runs x86_64 guests");
}

void place_ram(GuestMemory&) {}  // the factories' layout is the PC's

size_t virtio_slot_count() { return x86::kVirtioMmioSlots; }
VirtioSlot virtio_slot(size_t index) {
  if (index >= virtio_slot_count()) throw VmrunError(ErrorCode::Internal, "more virtio devices than MMIO slots");
  return {x86::kVirtioMmioBase + index * x86::kVirtioMmioSlotSize, x86::kVirtioMmioSlotSize, x86::kVirtioMmioGsis[index]};
}

}  // namespace platform

void MachineBuilder::add_platform_devices(Machine& m, uint64_t memory_size) {
  m.uart_ = std::make_shared<Uart16550>("uart0", std::make_shared<VmInterruptLine>(*m.vm_, kCom1Irq), m.console_.get());
  m.port_bus_.add(kCom1Port, 8, m.uart_);
  m.port_bus_.add(0x60, 5, std::make_shared<I8042>(&m));
  m.port_bus_.add(0x70, 2, std::make_shared<CmosRtc>(memory_size));
  m.port_bus_.add(0xCF8, 8, std::make_shared<PciConfigAbsent>());
  m.port_bus_.add(kExitPortAddress, 4, std::make_shared<ExitPort>(&m));
}

GuestStart MachineBuilder::load_guest(Machine& m, const MachineConfig& config, const KernelImage& image, size_t virtio_devices) {
  // The loader decides each vCPU's start state; Linux APs wait for the guest's INIT/SIPI.
  std::vector<std::optional<x86::StartState>> starts(static_cast<size_t>(config.cpus));
  GuestStart out;
  if (image.format == KernelFormat::HermitElf) {
    HermitBootPlan plan = prepare_hermit_boot(image.kernel, config, m.memory_, m, *m.console_, m.console_input_);
    if (plan.load_bias)
      out.gdb_note = "the kernel is relocatable and was moved by " + hex(plan.load_bias) + " (always, under --gdb): load its symbols with gdb's symbol-file -o " +
                     hex(plan.load_bias) + " " + config.kernel_path;
    for (int i = 0; i < config.cpus; i++) starts[static_cast<size_t>(i)] = plan.start_state_for(i);
    m.port_io_handler_ = std::move(plan.hypercalls);
  } else {
    LinuxBootInput in{&image.kernel, image.format, config.kernel_path, image.has_initrd ? &image.initrd : nullptr, image.initrd_names,
                      config.cmdline + virtio_cmdline(virtio_devices)};
    starts[0] = load_linux(in, m.memory_).start;
    x86::write_mp_table(m.memory_, config.cpus);
  }
  out.start_vcpu = [starts = std::move(starts)](int index, Vcpu& vcpu) {
    if (const auto& s = starts[static_cast<size_t>(index)]) x86_vcpu(vcpu).set_start_state(*s);
  };
  return out;
}

}  // namespace vmrun
