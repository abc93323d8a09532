// Where uhyve puts a Hermit guest's boot structures, as offsets from the start of
// guest RAM (GPA 0 in vmrun), and the kernel's placement rules (notes/uhyve-abi.md).
#pragma once
#include <cstdint>

namespace vmrun::hermit {

constexpr uint64_t kGdtAddress = 0x1000;
constexpr uint64_t kFdtAddress = 0x5000;
constexpr uint64_t kFdtMaxSize = 0x4000;  // up to the boot info
constexpr uint64_t kBootInfoAddress = 0x9000;
constexpr uint64_t kPml4Address = 0x10000;
constexpr uint64_t kPageTablePoolStart = 0x11000;
constexpr uint64_t kPageTablePoolEnd = 0x30000;
/** A position-independent kernel goes this far above its (2 MiB-aligned) base, as in uhyve 0.5+. */
constexpr uint64_t kKernelOffset = 0x40000;
/** The boot stack: 32 KiB right below the kernel; RSP points at its bottom. */
constexpr uint64_t kBootStackSize = 0x8000;
constexpr uint64_t kLargePageSize = 2ULL << 20;

}  // namespace vmrun::hermit
