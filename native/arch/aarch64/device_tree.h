// The device tree an arm64 Linux guest boots with: memory, the CPUs (PSCI for
// bringing up secondaries), the GICv3, the architected timer, PSCI, the 16550 UART,
// vmrun's exit device, the virtio-mmio devices attached, and /chosen (command line, initrd, console).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vmrun::aarch64 {

/** What the tree describes beyond the fixed layout (arch/aarch64/layout.h). */
struct DeviceTreeConfig {
  uint64_t ram_base = 0;
  uint64_t ram_size = 0;
  int cpus = 1;
  std::string bootargs;
  /** The initrd's guest-physical range; size 0 for none. */
  uint64_t initrd_start = 0;
  uint64_t initrd_size = 0;
  /** How many virtio-mmio slots hold a device (slots 0..n-1). */
  uint32_t virtio_slots = 0;
};

/** The flattened tree (DTB); throws VmrunError(Usage) for a shape the layout cannot hold. */
std::vector<uint8_t> build_device_tree(const DeviceTreeConfig& config);

}  // namespace vmrun::aarch64
