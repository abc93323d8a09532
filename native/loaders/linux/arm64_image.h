// The Linux arm64 boot protocol (Documentation/arch/arm64/booting.rst): an "Image"
// with its 64-byte header (text_offset, image_size, flags, the "ARM\x64" magic),
// placed at a 2 MiB-aligned base + text_offset in RAM, a device tree (x0) and an
// initrd the tree points at. Produces the boot vCPU's start state.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "arch/aarch64/cpu_state.h"
#include "memory/guest_memory.h"

namespace vmrun {

/** The Image header's fields vmrun uses. */
struct Arm64ImageHeader {
  uint64_t text_offset = 0;  // where in its 2 MiB-aligned block the Image goes
  uint64_t image_size = 0;   // bytes the kernel occupies from there, BSS included
  uint64_t flags = 0;        // bit 0: big-endian; bits 1-2: page size; bit 3: placement anywhere
};

/** True if `file` starts with an arm64 Image header (the magic at 0x38). */
bool looks_like_arm64_image(const std::vector<uint8_t>& file);

/** Parses and checks the header; throws VmrunError(KernelFormat) naming `path`. */
Arm64ImageHeader parse_arm64_image(const std::vector<uint8_t>& file, const std::string& path);

struct Arm64LinuxBootInput {
  const std::vector<uint8_t>* kernel;
  std::string kernel_path;  // for messages
  const std::vector<uint8_t>* initrd = nullptr;
  std::string cmdline;
  int cpus = 1;
  uint32_t virtio_slots = 0;  // virtio-mmio slots in use, announced in the device tree
};

struct LoadedArm64Linux {
  aarch64::StartState start;  // for vCPU 0; the others wait for PSCI CPU_ON
  uint64_t kernel_address = 0;
  uint64_t kernel_end = 0;
  uint64_t initrd_address = 0;
  uint64_t device_tree_address = 0;
};

/** The arm64 kernel's command-line limit (COMMAND_LINE_SIZE), NUL included. */
constexpr size_t kArm64CmdlineMax = 2048;

/** Loads kernel, initrd and device tree into `memory` (one RAM region); throws VmrunError(Usage) if they do not fit. */
LoadedArm64Linux load_arm64_linux(const Arm64LinuxBootInput& input, const GuestMemory& memory);

}  // namespace vmrun
