// hermit-entry's RawBootInfo as uhyve fills it: the one structure the kernel reads
// at entry (RDI points at it). Entry versions 3 (hermit-entry 0.9.3-0.9.10) and 4
// (0.10.x) share one layout: 0.10 only added a platform variant (Fdt) vmrun never
// writes, and 0.9.10 replaced the i128 boot time by an 8-aligned [u8; 16], which is
// where rustc had put the i128 until 1.77. Entry version 2 (0.9.0-0.9.2) has no
// device_tree field: everything after serial_port_base sits 8 bytes lower.
// Layouts pinned below.
#pragma once
#include <cstddef>
#include <cstdint>

#include "loaders/hermit/hermit_image.h"
#include "memory/guest_memory.h"

namespace vmrun::hermit {

/** RawBootInfo, repr(C): 128 bytes. */
struct RawBootInfo {
  uint64_t phys_addr_start;
  uint64_t phys_addr_end;
  uint16_t serial_port_base;  // 0 = none
  uint8_t pad0[6];
  uint64_t device_tree;  // 0 = none
  uint64_t kernel_image_start;
  uint64_t kernel_image_end;
  uint64_t tls_start, tls_filesz, tls_memsz, tls_align;
  uint32_t platform;  // RawPlatformInfo discriminant
  uint32_t pad1;
  uint8_t has_pci;
  uint8_t pad2[7];
  uint64_t num_cpus;
  uint32_t cpu_freq_khz;  // 0 = unknown
  uint32_t pad3;
  uint8_t boot_time_ns[16];  // i128, little-endian, ns since the Unix epoch
};
static_assert(sizeof(RawBootInfo) == 128);
static_assert(offsetof(RawBootInfo, serial_port_base) == 16 && offsetof(RawBootInfo, device_tree) == 24);
static_assert(offsetof(RawBootInfo, tls_start) == 48 && offsetof(RawBootInfo, platform) == 80);
static_assert(offsetof(RawBootInfo, has_pci) == 88 && offsetof(RawBootInfo, num_cpus) == 96);
static_assert(offsetof(RawBootInfo, cpu_freq_khz) == 104 && offsetof(RawBootInfo, boot_time_ns) == 112);

/** RawBootInfo of hermit-entry 0.9.0-0.9.2 (entry version 2), repr(C): 120 bytes. */
struct RawBootInfoV2 {
  uint64_t phys_addr_start;
  uint64_t phys_addr_end;
  uint16_t serial_port_base;
  uint8_t pad0[6];
  uint64_t kernel_image_start;
  uint64_t kernel_image_end;
  uint64_t tls_start, tls_filesz, tls_memsz, tls_align;
  uint32_t platform;
  uint32_t pad1;
  uint8_t has_pci;
  uint8_t pad2[7];
  uint64_t num_cpus;
  uint32_t cpu_freq_khz;
  uint32_t pad3;
  uint8_t boot_time_ns[16];
};
static_assert(sizeof(RawBootInfoV2) == 120);
static_assert(offsetof(RawBootInfoV2, kernel_image_start) == 24 && offsetof(RawBootInfoV2, platform) == 72);
static_assert(offsetof(RawBootInfoV2, num_cpus) == 88 && offsetof(RawBootInfoV2, boot_time_ns) == 104);

/** The platform discriminant on x86_64 (Multiboot = 0, Uhyve = 1, LinuxBootParams = 2, Fdt = 3). */
constexpr uint32_t kPlatformUhyve = 1;

/** What goes into the boot info besides the kernel's own placement. */
struct BootInfoInput {
  uint64_t ram_end = 0;
  uint16_t serial_port_base = 0;
  uint64_t device_tree = 0;
  int num_cpus = 1;
  uint32_t cpu_freq_khz = 0;
  int64_t boot_time_ns = 0;
};

/** Writes the boot info at kBootInfoAddress in the layout of `entry_version` (2, 3 or 4). */
void write_boot_info(const GuestMemory& memory, const LoadedKernel& kernel, const BootInfoInput& input, uint8_t entry_version);

/** The host CPU's frequency in kHz from /proc/cpuinfo, or 0 if it does not say. */
uint32_t host_cpu_khz();

}  // namespace vmrun::hermit
