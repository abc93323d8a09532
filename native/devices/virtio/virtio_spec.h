// Constants of the virtio 1.2 specification that the transport and devices share:
// device status bits, feature bits, split-ring layout and the virtio-mmio registers.
// Only the modern interface (virtio-mmio version 2) is implemented.
#pragma once
#include <cstdint>

namespace vmrun::virtio {

// Device status (spec 2.1).
constexpr uint32_t kStatusAcknowledge = 1;
constexpr uint32_t kStatusDriver = 2;
constexpr uint32_t kStatusDriverOk = 4;
constexpr uint32_t kStatusFeaturesOk = 8;
constexpr uint32_t kStatusDeviceNeedsReset = 64;
constexpr uint32_t kStatusFailed = 128;

// Reserved feature bits (spec 6).
constexpr uint64_t kFeatureVersion1 = 1ULL << 32;
/**
 * VIRTIO_F_EVENT_IDX (spec 2.7.7, 2.7.10): the driver's used_event says after which
 * used buffer it wants an interrupt, the device's avail_event after which available
 * buffer it wants a notification. A device opts in by offering it (VirtioDevice::features).
 */
constexpr uint64_t kFeatureRingEventIdx = 1ULL << 29;

// Split virtqueue descriptor flags (spec 2.7.5).
constexpr uint16_t kDescNext = 1;
constexpr uint16_t kDescWrite = 2;
constexpr uint16_t kDescIndirect = 4;

/** Largest queue the split-ring format allows (spec 2.7: Queue Size <= 32768). */
constexpr uint16_t kMaxQueueSize = 32768;

// Interrupt status bits (spec 4.2.2).
constexpr uint32_t kInterruptUsedBuffer = 1;
constexpr uint32_t kInterruptConfigChange = 2;

// virtio-mmio register offsets (spec 4.2.2, version 2 layout).
namespace mmio {
constexpr uint64_t kMagicValue = 0x000;  // "virt"
constexpr uint64_t kVersion = 0x004;
constexpr uint64_t kDeviceId = 0x008;
constexpr uint64_t kVendorId = 0x00c;
constexpr uint64_t kDeviceFeatures = 0x010;
constexpr uint64_t kDeviceFeaturesSel = 0x014;
constexpr uint64_t kDriverFeatures = 0x020;
constexpr uint64_t kDriverFeaturesSel = 0x024;
constexpr uint64_t kQueueSel = 0x030;
constexpr uint64_t kQueueNumMax = 0x034;
constexpr uint64_t kQueueNum = 0x038;
constexpr uint64_t kQueueReady = 0x044;
constexpr uint64_t kQueueNotify = 0x050;
constexpr uint64_t kInterruptStatus = 0x060;
constexpr uint64_t kInterruptAck = 0x064;
constexpr uint64_t kStatus = 0x070;
constexpr uint64_t kQueueDescLow = 0x080;
constexpr uint64_t kQueueDescHigh = 0x084;
constexpr uint64_t kQueueDriverLow = 0x090;
constexpr uint64_t kQueueDriverHigh = 0x094;
constexpr uint64_t kQueueDeviceLow = 0x0a0;
constexpr uint64_t kQueueDeviceHigh = 0x0a4;
constexpr uint64_t kShmSel = 0x0ac;
constexpr uint64_t kShmLenLow = 0x0b0;
constexpr uint64_t kShmLenHigh = 0x0b4;
constexpr uint64_t kShmBaseLow = 0x0b8;
constexpr uint64_t kShmBaseHigh = 0x0bc;
constexpr uint64_t kConfigGeneration = 0x0fc;
constexpr uint64_t kConfig = 0x100;

constexpr uint32_t kMagic = 0x74726976;  // "virt", little-endian
constexpr uint32_t kVersion2 = 2;
constexpr uint32_t kVendor = 0x4e524d56;  // "VMRN"
}  // namespace mmio

}  // namespace vmrun::virtio
