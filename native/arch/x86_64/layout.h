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

// virtio-mmio devices: one 4 KiB window each, from the start of the 32-bit MMIO hole
// (RAM never reaches it: memory/guest_memory.h), far below the IOAPIC and LAPIC.
// Each slot has its own IOAPIC input, announced to Linux on the command line as
// virtio_mmio.device=4K@ADDRESS:GSI. The GSIs skip 0 (PIT), 1 and 12 (i8042),
// 4 (the UART) and 8 (the CMOS RTC). A device keeps its slot's place across a
// snapshot: the builder attaches devices in a fixed order.
constexpr uint64_t kVirtioMmioBase = 0xC000'0000;
constexpr uint64_t kVirtioMmioSlotSize = 0x1000;
constexpr uint32_t kVirtioMmioGsis[] = {5, 6, 7, 9, 10, 11};
constexpr int kVirtioMmioSlots = sizeof(kVirtioMmioGsis) / sizeof(kVirtioMmioGsis[0]);

}  // namespace vmrun::x86
