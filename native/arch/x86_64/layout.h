// Where vmrun puts the boot structures of an x86_64 Linux guest in low memory. The
// addresses follow Firecracker's layout, which Linux is known to be happy with.
#pragma once
#include <cstdint>

namespace vmrun::x86 {

constexpr uint64_t kBootGdtAddress = 0x500;
constexpr uint64_t kBootIdtAddress = 0x520;
constexpr uint64_t kZeroPageAddress = 0x7000;
constexpr uint64_t kBootStackPointer = 0x8FF0;
constexpr uint64_t kPml4Address = 0x9000;   // then PDPT at 0xA000, four PDs 0xB000-0xEFFF
constexpr uint64_t kCmdlineAddress = 0x20000;
constexpr uint64_t kCmdlineMaxSize = 0x10000;  // up to the EBDA; the kernel's limit is smaller
constexpr uint64_t kEbdaStart = 0x9FC00;       // MP table lives here
constexpr uint64_t kHighMemoryStart = 0x100000;  // 1 MiB: where the kernel is loaded

constexpr uint64_t kIoapicAddress = 0xFEC0'0000;
constexpr uint64_t kLapicAddress = 0xFEE0'0000;

}  // namespace vmrun::x86
