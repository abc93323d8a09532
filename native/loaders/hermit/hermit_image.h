// A Hermit kernel image: its notes (entry version, uhyve interface version, Hermit
// version), its load layout, and loading it into guest RAM with the static-PIE
// relocations applied (notes/uhyve-abi.md "Kernel image").
#pragma once
#include <cstdint>
#include <optional>

#include "loaders/elf64.h"
#include "memory/guest_memory.h"

namespace vmrun::hermit {

/**
 * Entry versions vmrun boots: 2 (hermit-entry 0.9.0-0.9.2), 3 (0.9.3-0.9.10) and 4
 * (0.10.x). They differ only in the boot info's layout (boot_info.h).
 */
constexpr uint8_t kMinEntryVersion = 2;
constexpr uint8_t kMaxEntryVersion = 4;

/** What the notes say about the kernel. */
struct HermitNotes {
  uint8_t entry_version = 0;
  uint32_t interface_version = 1;  // UHYVEIF, 1 when absent
  bool has_hermit_version = false;  // GNU ABI tag with OS 6 (Hermit)
  uint32_t major = 0, minor = 0, patch = 0;
  /** Kernels before 0.10 (or that do not say) expect their whole 1 GiB region identity-mapped. */
  bool wants_legacy_mapping() const { return !has_hermit_version || (major == 0 && minor < 10); }
};

/** The kernel's layout, before it is placed. */
struct HermitImage {
  HermitNotes notes;
  bool position_independent = false;  // ET_DYN: relocated to where vmrun puts it
  uint64_t first_vaddr = 0;           // p_vaddr of the first PT_LOAD
  uint64_t mem_size = 0;              // end of the last PT_LOAD - first_vaddr
  uint64_t alignment = 0x1000;        // largest PT_LOAD p_align
};

/** The TLS template (PT_TLS), as the boot info carries it. */
struct TlsTemplate {
  uint64_t start = 0, filesz = 0, memsz = 0, align = 0;
};

/** Where the kernel ended up. */
struct LoadedKernel {
  uint64_t start = 0, end = 0, entry = 0;
  TlsTemplate tls;
};

/** Reads and checks the notes and program headers; throws KernelFormat errors naming the problem. */
HermitImage inspect_hermit_image(const Elf64File& elf);

/** Copies the PT_LOADs to `load_address`, zeroes their .bss, and applies relocations. */
LoadedKernel load_hermit_image(const Elf64File& elf, const HermitImage& image, uint64_t load_address, const GuestMemory& memory);

}  // namespace vmrun::hermit
