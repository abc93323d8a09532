// hermit-entry 0.10's RawBootInfo (entry version 4) as uhyve fills it: the one
// structure the kernel reads at entry (RDI points at it). Layout pinned below.
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

/** Writes the boot info at kBootInfoAddress. */
void write_boot_info(const GuestMemory& memory, const LoadedKernel& kernel, const BootInfoInput& input);

/** The host CPU's frequency in kHz from /proc/cpuinfo, or 0 if it does not say. */
uint32_t host_cpu_khz();

}  // namespace vmrun::hermit
