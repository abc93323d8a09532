// virtio-net's receive path (native/devices/virtio/net/rx_frames.h) on the real
// virtio-mmio transport and split virtqueue, with the rings in a guest RAM the test
// writes as a driver would: frames merged over several chains with num_buffers, one
// index update per frame, frames that do not fit, a guest that offers no buffers or
// too few, a wrap of the ring indexes, and chains a hostile driver builds.
#include <cstring>
#include <vector>

#include "check.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/net/rx_frames.h"
#include "devices/virtio/virtio_spec.h"
#include "memory/guest_memory.h"
#include "one_queue_device.h"

using namespace vmrun;
using namespace vmrun::virtio;
using namespace vmrun::virtio::net;

namespace {


constexpr uint16_t kSize = 8;
constexpr uint64_t kDesc = 0x1000, kAvail = 0x2000, kUsed = 0x3000, kBuffers = 0x10000;
constexpr uint64_t kUnassigned = 0xD000'0000ULL;

void write32(VirtioMmioTransport& t, uint64_t offset, uint32_t value) {
  uint8_t b[4];
  std::memcpy(b, &value, 4);
  t.write(offset, b, 4);
}

/** A driver of the one queue: it fills descriptors and the available ring, reads the used ring. */
struct Driver {
  GuestMemory memory = GuestMemory::anonymous(1 << 20);
  OneQueueDevice* device = new OneQueueDevice("rx-only", 1, kFeatureRingEventIdx, 8, StateBlob{1, 0, 0, 0});
  VirtioMmioTransport transport{std::unique_ptr<VirtioDevice>(device), memory, std::make_unique<NoInterrupt>()};
  uint16_t avail_idx = 0;
  uint16_t used_seen = 0;
  RxPlacer placer;

  explicit Driver(bool event_idx = false) {
    write32(transport, mmio::kStatus, kStatusAcknowledge | kStatusDriver);
    write32(transport, mmio::kDriverFeaturesSel, 0);
    write32(transport, mmio::kDriverFeatures, event_idx ? static_cast<uint32_t>(kFeatureRingEventIdx) : 0);
    write32(transport, mmio::kDriverFeaturesSel, 1);
    write32(transport, mmio::kDriverFeatures, 1);  // VIRTIO_F_VERSION_1
    write32(transport, mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    write32(transport, mmio::kQueueSel, 0);
    write32(transport, mmio::kQueueNum, kSize);
    write32(transport, mmio::kQueueDescLow, kDesc);
    write32(transport, mmio::kQueueDriverLow, kAvail);
    write32(transport, mmio::kQueueDeviceLow, kUsed);
    write32(transport, mmio::kQueueReady, 1);
    write32(transport, mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  }

  void descriptor(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    uint8_t d[16];
    std::memcpy(d, &addr, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
    std::memcpy(memory.range(kDesc + 16ULL * i, 16), d, 16);
  }
  /** Descriptor `i` as one writable buffer of `len` bytes at its own place in RAM. */
  void buffer(uint16_t i, uint32_t len) { descriptor(i, buffer_address(i), len, kDescWrite); }
  static uint64_t buffer_address(uint16_t i) { return kBuffers + 0x4000ULL * i; }
  void offer(uint16_t head) {
    std::memcpy(memory.range(kAvail + 4 + 2ULL * (avail_idx % kSize), 2), &head, 2);
    avail_idx++;
    std::memcpy(memory.range(kAvail + 2, 2), &avail_idx, 2);
  }
  /** Sets both sides' ring positions to `at`, as after `at` buffers went round. */
  void start_at(uint16_t at) {
    avail_idx = used_seen = at;
    std::memcpy(memory.range(kAvail + 2, 2), &at, 2);
    std::memcpy(memory.range(kUsed + 2, 2), &at, 2);
    transport_queues([&](VirtioQueues& q) { q.queue(0).next_avail = q.queue(0).next_used = at; });
  }
  void transport_queues(const std::function<void(VirtioQueues&)>& work) { CHECK(device->link->with_queues(work)); }

  RxOutcome deliver(const std::vector<uint8_t>& frame, RxMode mode) {
    RxOutcome r = RxOutcome::Stopped;
    device->link->with_queues([&](VirtioQueues& q) { r = placer.deliver(q, 0, frame.data(), frame.size(), mode); });
    return r;
  }

  uint16_t used_idx() const {
    uint16_t v;
    std::memcpy(&v, memory.range(kUsed + 2, 2), 2);
    return v;
  }
  uint16_t avail_event() const {
    uint16_t v;
    std::memcpy(&v, memory.range(kUsed + 4 + 8ULL * kSize, 2), 2);
    return v;
  }
  /** The next used element the driver has not looked at. */
  UsedBuffer next_used() {
    uint32_t e[2];
    std::memcpy(e, memory.range(kUsed + 4 + 8ULL * (used_seen % kSize), 8), 8);
    used_seen++;
    return {static_cast<uint16_t>(e[0]), e[1]};
  }
  uint8_t* at(uint64_t gpa) { return memory.range(gpa, 1); }
};

std::vector<uint8_t> frame_of(size_t len) {
  std::vector<uint8_t> f(len);
  for (size_t i = 0; i < len; i++) f[i] = static_cast<uint8_t>(i * 13 + 7);
  return f;
}

uint16_t num_buffers(const uint8_t* header) { return static_cast<uint16_t>(header[kNumBuffersOffset] | header[kNumBuffersOffset + 1] << 8); }

const RxMode kMergeable{true, true};
const RxMode kSingle{false, false};

}  // namespace

TEST("virtio-net rx: a frame larger than one buffer is merged over several, num_buffers says how many") {
  Driver d;
  for (uint16_t i = 0; i < 4; i++) {
    d.buffer(i, 1024);
    d.offer(i);
  }
  auto frame = frame_of(3000);
  CHECK(d.deliver(frame, kMergeable) == RxOutcome::Delivered);
  // 12 + 3000 bytes: three buffers, published together; the fourth stays with the device.
  CHECK_EQ(d.used_idx(), 3);
  std::vector<uint8_t> got;
  const uint32_t expect_len[3] = {1024, 1024, 3012 - 2048};
  for (uint16_t i = 0; i < 3; i++) {
    UsedBuffer u = d.next_used();
    CHECK_EQ(u.head, i);
    CHECK_EQ(u.written, expect_len[i]);
    const uint8_t* b = d.at(Driver::buffer_address(i));
    if (i == 0) {
      CHECK_EQ(b[0], kHeaderDataValid);
      CHECK_EQ(num_buffers(b), 3);
      got.insert(got.end(), b + kNetHeaderBytes, b + u.written);
    } else {
      got.insert(got.end(), b, b + u.written);
    }
  }
  CHECK(got == frame);
  // The next frame starts in the fourth buffer.
  CHECK(d.deliver(frame_of(100), kMergeable) == RxOutcome::Delivered);
  UsedBuffer u = d.next_used();
  CHECK_EQ(u.head, 3);
  CHECK_EQ(u.written, 112);
  CHECK_EQ(num_buffers(d.at(Driver::buffer_address(3))), 1);
  CHECK_EQ(d.transport.failures().count, 0);
}

TEST("virtio-net rx: without MRG_RXBUF a frame takes one chain, over its descriptors, or is dropped") {
  Driver d;
  // Chain 0: a header-sized descriptor, then the data's (what a driver without ANY_LAYOUT does).
  d.descriptor(0, Driver::buffer_address(0), kNetHeaderBytes, kDescWrite | kDescNext, 1);
  d.descriptor(1, Driver::buffer_address(1), 1600, kDescWrite);
  d.offer(0);
  d.buffer(2, 512);  // too small for the next frame
  d.offer(2);
  d.buffer(3, 2048);
  d.offer(3);
  auto frame = frame_of(1514);
  CHECK(d.deliver(frame, kSingle) == RxOutcome::Delivered);
  UsedBuffer u = d.next_used();
  CHECK_EQ(u.head, 0);
  CHECK_EQ(u.written, 1526);
  const uint8_t* h = d.at(Driver::buffer_address(0));
  CHECK_EQ(h[0], 0);  // no DATA_VALID without GUEST_CSUM
  CHECK_EQ(num_buffers(h), 1);
  CHECK(std::memcmp(d.at(Driver::buffer_address(1)), frame.data(), frame.size()) == 0);
  // The 512-byte chain cannot hold it: used with nothing written, the frame is gone.
  CHECK(d.deliver(frame, kSingle) == RxOutcome::Dropped);
  u = d.next_used();
  CHECK_EQ(u.head, 2);
  CHECK_EQ(u.written, 0);
  // The next frame goes to the next chain.
  CHECK(d.deliver(frame, kSingle) == RxOutcome::Delivered);
  u = d.next_used();
  CHECK_EQ(u.head, 3);
  CHECK_EQ(u.written, 1526);
  CHECK_EQ(d.transport.failures().count, 0);
}

TEST("virtio-net rx: a guest that offers no buffers, or too few, keeps its frame waiting with nothing taken") {
  Driver d(/*event_idx=*/true);
  auto frame = frame_of(3000);
  CHECK(d.deliver(frame, kMergeable) == RxOutcome::NoBuffers);
  CHECK_EQ(d.used_idx(), 0);
  CHECK_EQ(d.avail_event(), 0);  // notify me when the first buffer comes
  d.buffer(0, 1024);
  d.offer(0);
  d.buffer(1, 1024);
  d.offer(1);
  CHECK(d.deliver(frame, kMergeable) == RxOutcome::NoBuffers);
  CHECK_EQ(d.used_idx(), 0);
  // Both chains were given back, and the driver is asked to notify on its next buffer.
  CHECK_EQ(d.avail_event(), 2);
  d.transport_queues([](VirtioQueues& q) { CHECK_EQ(q.queue(0).next_avail, 0); });
  d.buffer(2, 1024);
  d.offer(2);
  CHECK(d.deliver(frame, kMergeable) == RxOutcome::Delivered);
  CHECK_EQ(d.used_idx(), 3);
  CHECK_EQ(d.next_used().head, 0);
  CHECK_EQ(d.next_used().head, 1);
  CHECK_EQ(d.next_used().head, 2);
  CHECK_EQ(num_buffers(d.at(Driver::buffer_address(0))), 3);
}

TEST("virtio-net rx: a merged frame crosses the wrap of the ring indexes") {
  Driver d;
  d.start_at(65534);
  for (uint16_t i = 0; i < 4; i++) {
    d.buffer(i, 1024);
    d.offer(i);
  }
  CHECK_EQ(d.avail_idx, 2);  // wrapped
  auto frame = frame_of(2500);
  CHECK(d.deliver(frame, kMergeable) == RxOutcome::Delivered);
  CHECK_EQ(d.used_idx(), 1);  // 65534 + 3
  std::vector<uint8_t> got;
  for (uint16_t i = 0; i < 3; i++) {
    UsedBuffer u = d.next_used();
    CHECK_EQ(u.head, i);
    const uint8_t* b = d.at(Driver::buffer_address(i));
    if (i == 0) CHECK_EQ(num_buffers(b), 3);
    got.insert(got.end(), b + (i == 0 ? kNetHeaderBytes : 0), b + u.written);
  }
  CHECK(got == frame);
  CHECK_EQ(d.transport.failures().count, 0);
}

TEST("virtio-net rx: a chain too small for the header costs the frame, not the device") {
  Driver d;
  d.buffer(0, 1024);
  d.offer(0);
  d.buffer(1, 4);  // less than a header: spec 5.1.6.3.1 forbids it
  d.offer(1);
  d.descriptor(2, Driver::buffer_address(2), 1024, 0);  // read-only: no writable byte
  d.offer(2);
  d.buffer(3, 1024);
  d.offer(3);
  CHECK(d.deliver(frame_of(2000), kMergeable) == RxOutcome::Dropped);
  CHECK_EQ(d.used_idx(), 2);
  CHECK_EQ(d.next_used().written, 0);
  CHECK_EQ(d.next_used().written, 0);
  // A read-only chain alone: dropped the same way.
  CHECK(d.deliver(frame_of(60), kMergeable) == RxOutcome::Dropped);
  UsedBuffer u = d.next_used();
  CHECK_EQ(u.head, 2);
  CHECK_EQ(u.written, 0);
  CHECK(d.deliver(frame_of(60), kMergeable) == RxOutcome::Delivered);
  u = d.next_used();
  CHECK_EQ(u.head, 3);
  CHECK_EQ(u.written, 72);
  CHECK_EQ(d.transport.failures().count, 0);
}

TEST("virtio-net rx: a frame that every buffer of the ring together cannot hold is dropped, not waited for") {
  Driver d;
  for (uint16_t i = 0; i < kSize; i++) {
    d.buffer(i, 64);
    d.offer(i);
  }
  CHECK(d.deliver(frame_of(1000), kMergeable) == RxOutcome::Dropped);
  CHECK_EQ(d.used_idx(), kSize);
  for (uint16_t i = 0; i < kSize; i++) CHECK_EQ(d.next_used().written, 0);
  CHECK_EQ(d.transport.failures().count, 0);
}

TEST("virtio-net rx: a chain outside guest RAM stops the queue until the driver resets it") {
  Driver d;
  d.buffer(0, 1024);
  d.offer(0);
  d.descriptor(1, kUnassigned, 1024, kDescWrite);
  d.offer(1);
  CHECK(d.deliver(frame_of(1500), kMergeable) == RxOutcome::Stopped);
  CHECK_EQ(d.transport.failures().count, 1);
  CHECK_EQ(d.used_idx(), 0);
  CHECK(!d.device->link->with_queues([](VirtioQueues&) {}));  // DEVICE_NEEDS_RESET: no more queue work
}
