// What differs between the machines vmm/builder.cc assembles, written once per
// architecture: vmm/x86_64/platform.cc builds a PC (legacy ports, the MP table,
// virtio-mmio announced on the command line), vmm/aarch64/platform.cc QEMU virt's
// layout (a GICv3, the console and exit device on MMIO, a generated device tree).
// CMake compiles the target's file only; the rest of vmm/ names no architecture.
// The parts that reach into a Machine are MachineBuilder's (builder.h), implemented
// in the same per-architecture file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "loaders/kernel_format.h"
#include "memory/guest_memory.h"

namespace vmrun::platform {

/** The machine a snapshot records ("x86_64-pc", "arm64-virt"); a restore on another is refused. */
const char* machine_type();

/** The most vCPUs this machine describes to its guest (MP table, redistributor window). */
int max_cpus();

/** Refuses (VmrunError KernelFormat) a kernel format this machine does not boot, naming `path`. */
void check_kernel_format(KernelFormat format, const std::string& path);

/** Whether the gdb stub (debug/gdb_stub.h, x86-64 registers) serves this machine's vCPUs. */
bool has_gdb_stub();

/** Puts guest RAM where this machine has it (x86: from 0 around the MMIO hole; arm64: from 1 GiB). */
void place_ram(GuestMemory& memory);

/** One virtio-mmio slot: its register window and the interrupt its transport raises (x86: an IOAPIC input; arm64: an SPI). */
struct VirtioSlot {
  uint64_t base;
  uint64_t size;
  uint32_t gsi;
};

/** How many virtio-mmio slots the machine has (vsock, network, disks and volumes share them). */
size_t virtio_slot_count();
/** Slot `index` (< virtio_slot_count()). */
VirtioSlot virtio_slot(size_t index);

}  // namespace vmrun::platform
