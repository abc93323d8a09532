// The arm64 machine's guest-physical memory map (QEMU virt's, so that guests and
// tools that know it feel at home): devices below 1 GiB, RAM from 1 GiB, and the
// interrupt numbers the device tree announces.
#pragma once
#include <cstdint>

namespace vmrun::aarch64 {

/** GICv3 distributor (64 KiB) and the redistributors (two 64 KiB frames per vCPU). */
constexpr uint64_t kGicDistributorBase = 0x0800'0000;
constexpr uint64_t kGicDistributorSize = 0x1'0000;
constexpr uint64_t kGicRedistributorBase = 0x080A'0000;
constexpr uint64_t kGicRedistributorSizePerCpu = 0x2'0000;
/** The redistributor window QEMU's virt reserves (below the UART): 123 vCPUs. */
constexpr int kMaxCpus = 123;

/** The console: a 16550A on MMIO (one exit per byte sent, see notes/arm64-harness.md). */
constexpr uint64_t kUartBase = 0x0900'0000;
constexpr uint64_t kUartSize = 0x1000;
constexpr uint32_t kUartSpi = 1;
/** The 16550's input clock the device tree announces (the driver needs one; baud is not emulated). */
constexpr uint32_t kUartClockHz = 1'843'200;

/** vmrun's exit-status device: a 32-bit write of the status ends the VM (x86: port 0xF4). */
constexpr uint64_t kExitDeviceBase = 0x0901'0000;
constexpr uint64_t kExitDeviceSize = 0x1000;
/** How the guest finds it in the device tree (guest/init/src/exit_report.h says the same). */
constexpr const char* kExitDeviceCompatible = "vmrun,exit-device";

/** virtio-mmio slots, 512 bytes apart as on QEMU's virt, SPIs from 16 up. */
constexpr uint64_t kVirtioMmioBase = 0x0A00'0000;
constexpr uint64_t kVirtioMmioSlotSize = 0x200;
constexpr uint32_t kVirtioMmioSlots = 32;
constexpr uint32_t kVirtioMmioFirstSpi = 16;

/** RAM starts at 1 GiB; the kernel, initrd and device tree are placed inside it. */
constexpr uint64_t kRamBase = 0x4000'0000;

/** Interrupts the GIC has: 32 private (SGIs, PPIs) and the SPIs. A multiple of 32. */
constexpr uint32_t kGicInterrupts = 128;
constexpr uint32_t kGicPrivateInterrupts = 32;

/** The architected timer's PPIs (interrupt ID - 16), as the device tree gives them. */
constexpr uint32_t kTimerSecurePhysPpi = 13;
constexpr uint32_t kTimerPhysPpi = 14;
constexpr uint32_t kTimerVirtPpi = 11;
constexpr uint32_t kTimerHypPpi = 10;

static_assert(kGicRedistributorBase + kMaxCpus * kGicRedistributorSizePerCpu <= kUartBase,
              "the redistributors of kMaxCpus vCPUs end below the UART");
static_assert(kVirtioMmioFirstSpi + kVirtioMmioSlots <= kGicInterrupts - kGicPrivateInterrupts,
              "every virtio-mmio slot has an SPI");

}  // namespace vmrun::aarch64
