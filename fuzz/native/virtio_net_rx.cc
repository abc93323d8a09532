// Fuzz target: virtio-net's receive path (devices/virtio/net/rx_frames.h) behind the
// virtio-mmio transport, against receive rings a hostile driver writes. The input sets
// the queue size, the features (MRG_RXBUF, GUEST_CSUM), where both ring indexes start
// (so the 16-bit wrap comes up), the descriptor table and the available ring (addresses
// folded to land in guest RAM, just past it, or anywhere), and the lengths of the
// frames to deliver. Besides not crashing, every outcome must keep its promise:
// Delivered publishes chains whose used lengths add up to header + frame (exactly one
// chain without MRG_RXBUF), Dropped publishes chains with nothing written, NoBuffers
// takes nothing, and the used index moves only by what was published.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/net/rx_frames.h"
#include "devices/virtio/virtio_spec.h"
#include "memory/guest_memory.h"
#include "one_queue_device.h"
#include "targets.h"

namespace vmrun::fuzz {

namespace {

using namespace vmrun::virtio;
using namespace vmrun::virtio::net;

constexpr uint64_t kRamSize = 1ULL << 20;
constexpr uint64_t kDesc = 0x1000, kAvail = 0x3000, kUsed = 0x4000;
constexpr uint16_t kMaxQueue = 64;


void write32(VirtioMmioTransport& t, uint64_t offset, uint32_t value) {
  uint8_t b[4];
  std::memcpy(b, &value, 4);
  t.write(offset, b, 4);
}

/** Reads the fuzz input front to back; past its end, zeros. */
struct Input {
  const uint8_t* data;
  size_t size, at = 0;
  uint64_t take(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= static_cast<uint64_t>(at < size ? data[at++] : 0) << (8 * i);
    return v;
  }
};

uint16_t load16(const GuestMemory& m, uint64_t gpa) {
  uint16_t v;
  std::memcpy(&v, m.range(gpa, 2), 2);
  return v;
}

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

void virtio_net_rx(const uint8_t* data, size_t size) {
  if (size < 6) return;
  Input in{data, size};
  const uint8_t shape = static_cast<uint8_t>(in.take(1));
  const uint16_t qsize = static_cast<uint16_t>(1u << (shape % 7));  // 1..64
  const RxMode mode{(shape & 0x10) != 0, (shape & 0x20) != 0};
  const bool event_idx = shape & 0x40;
  const uint16_t start = static_cast<uint16_t>(in.take(2));
  const uint16_t offered = static_cast<uint16_t>(in.take(1) % (qsize + 1));

  GuestMemory memory = GuestMemory::anonymous(kRamSize);
  auto* device = new OneQueueDevice("virtio-net-rx-fuzz", 1, kFeatureRingEventIdx, kMaxQueue);
  VirtioMmioTransport transport(std::unique_ptr<VirtioDevice>(device), memory, std::make_unique<NoInterrupt>());
  write32(transport, mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  write32(transport, mmio::kDriverFeaturesSel, 0);
  write32(transport, mmio::kDriverFeatures, event_idx ? static_cast<uint32_t>(kFeatureRingEventIdx) : 0);
  write32(transport, mmio::kDriverFeaturesSel, 1);
  write32(transport, mmio::kDriverFeatures, 1);
  write32(transport, mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  write32(transport, mmio::kQueueNum, qsize);
  write32(transport, mmio::kQueueDescLow, kDesc);
  write32(transport, mmio::kQueueDriverLow, kAvail);
  write32(transport, mmio::kQueueDeviceLow, kUsed);
  write32(transport, mmio::kQueueReady, 1);
  write32(transport, mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);

  // The descriptors: an address folded into RAM (most), just past its end, or raw.
  for (uint16_t i = 0; i < qsize; i++) {
    uint64_t addr = in.take(8);
    const uint8_t where = static_cast<uint8_t>(in.take(1));
    if (where < 200) addr = 0x10000 + addr % (kRamSize - 0x10000);
    else if (where < 230) addr = kRamSize - (addr % 4096);
    uint32_t len = static_cast<uint32_t>(in.take(4));
    if (where & 1) len %= 4096;
    const uint16_t flags = static_cast<uint16_t>(in.take(1));  // NEXT, WRITE, INDIRECT and unknown bits
    const uint16_t next = static_cast<uint16_t>(in.take(1));
    uint8_t d[16];
    std::memcpy(d, &addr, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
    std::memcpy(memory.range(kDesc + 16ULL * i, 16), d, 16);
  }
  // The available ring from `start` on, `offered` entries (heads may be out of range).
  for (uint16_t i = 0; i < offered; i++) {
    uint16_t head = static_cast<uint16_t>(in.take(1));
    std::memcpy(memory.range(kAvail + 4 + 2ULL * (static_cast<uint16_t>(start + i) % qsize), 2), &head, 2);
  }
  const uint16_t avail_idx = static_cast<uint16_t>(start + offered);
  std::memcpy(memory.range(kAvail + 2, 2), &avail_idx, 2);
  std::memcpy(memory.range(kUsed + 2, 2), &start, 2);
  require(device->link->with_queues([&](VirtioQueues& q) { q.queue(0).next_avail = q.queue(0).next_used = start; }));

  RxPlacer placer;
  std::vector<uint8_t> frame;
  for (int n = 0; n < 16 && in.at < in.size; n++) {
    frame.assign(static_cast<size_t>(in.take(2) % 9000), static_cast<uint8_t>(n));
    RxOutcome r = RxOutcome::Stopped;
    uint16_t next_avail_before = 0, next_avail_after = 0;
    const uint16_t used_before = load16(memory, kUsed + 2);
    const bool live = device->link->with_queues([&](VirtioQueues& q) {
      next_avail_before = q.queue(0).next_avail;
      r = placer.deliver(q, 0, frame.data(), frame.size(), mode);
      next_avail_after = q.queue(0).next_avail;
    });
    if (!live) break;  // the transport failed the device on an earlier chain
    const uint16_t used_after = load16(memory, kUsed + 2);
    const uint16_t published = static_cast<uint16_t>(used_after - used_before);
    uint64_t written = 0;
    for (uint16_t i = 0; i < published; i++) {
      uint32_t e[2];
      std::memcpy(e, memory.range(kUsed + 4 + 8ULL * (static_cast<uint16_t>(used_before + i) % qsize), 8), 8);
      require(e[0] < qsize);
      written += e[1];
    }
    switch (r) {
      case RxOutcome::Delivered:
        require(published >= 1 && written == kNetHeaderBytes + frame.size());
        require(mode.mergeable || published == 1);
        require(static_cast<uint16_t>(next_avail_after - next_avail_before) == published);
        break;
      case RxOutcome::Dropped:
        require(written == 0 && static_cast<uint16_t>(next_avail_after - next_avail_before) == published);
        break;
      case RxOutcome::NoBuffers:
        require(published == 0 && next_avail_after == next_avail_before);
        break;
      case RxOutcome::Stopped:
        require(published == 0);
        break;
    }
    if (r == RxOutcome::NoBuffers || r == RxOutcome::Stopped) break;
  }
}

}  // namespace vmrun::fuzz

VMRUN_FUZZ_ENTRY(virtio_net_rx)
