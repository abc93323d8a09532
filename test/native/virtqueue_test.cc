// Notification suppression of the split virtqueue (VIRTIO_F_EVENT_IDX, virtio 1.2
// 2.7.7 and 2.7.10): vring_need_event across the 16-bit wraparound, the avail_event
// the device publishes when it finds the ring empty, the used_event it honours before
// interrupting, and the transport wiring (negotiation, one interrupt per batch).
#include <cstring>
#include <random>

#include "check.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/virtio_spec.h"
#include "devices/virtio/virtqueue.h"
#include "one_queue_device.h"

using namespace vmrun;
using namespace vmrun::virtio;

namespace {

/** The spec's meaning, spelt out: is event_idx one of old_idx, old_idx+1, ..., new_idx-1 (mod 2^16)? */
bool passed_by_walking(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
  for (uint16_t i = old_idx; i != new_idx; i++)
    if (i == event_idx) return true;
  return false;
}

constexpr uint16_t kSize = 8;
constexpr uint64_t kDesc = 0x10000, kAvail = 0x11000, kUsed = 0x12000, kBuffers = 0x20000;

/** A driver's side of one queue in guest RAM: descriptors, avail ring, used_event; reads avail_event and used.idx. */
struct DriverRing {
  const GuestMemory& m;
  uint16_t avail_idx = 0;

  explicit DriverRing(const GuestMemory& memory) : m(memory) {
    for (uint16_t i = 0; i < kSize; i++) {
      struct {
        uint64_t addr;
        uint32_t len;
        uint16_t flags, next;
      } d{kBuffers + 256ULL * i, 256, kDescWrite, 0};
      CHECK(m.write_obj(kDesc + 16ULL * i, d));
    }
  }
  void post(uint16_t n) {
    for (uint16_t k = 0; k < n; k++, avail_idx++) CHECK(m.write_obj<uint16_t>(kAvail + 4 + 2ULL * (avail_idx % kSize), avail_idx % kSize));
    CHECK(m.write_obj<uint16_t>(kAvail + 2, avail_idx));
  }
  void set_used_event(uint16_t v) { CHECK(m.write_obj<uint16_t>(kAvail + 4 + 2ULL * kSize, v)); }
  void set_avail_event(uint16_t v) { CHECK(m.write_obj<uint16_t>(kUsed + 4 + 8ULL * kSize, v)); }
  uint16_t avail_event() const { return m.read_obj<uint16_t>(kUsed + 4 + 8ULL * kSize).value_or(0xdead); }
  uint16_t used_idx() const { return m.read_obj<uint16_t>(kUsed + 2).value_or(0xdead); }
};

Virtqueue ready_queue(const GuestMemory& m, bool event_idx) {
  Virtqueue q(256);
  q.config = {kSize, true, kDesc, kAvail, kUsed};
  CHECK_EQ(q.check_layout(m), std::string());
  q.event_idx = event_idx;
  return q;
}

/** Pops every available chain and returns it to the used ring; how many. */
int consume_all(Virtqueue& q, const GuestMemory& m) {
  int n = 0;
  DescriptorChain c;
  std::string why;
  for (Virtqueue::Pop r; (r = q.pop(m, &c, &why)) == Virtqueue::Pop::Chain; n++) CHECK(q.push_used(m, c.head, 0));
  CHECK_EQ(why, std::string());
  return n;
}

}  // namespace

TEST("event idx: vring_need_event is true exactly when the index moved past the event, across the wrap") {
  CHECK(vring_need_event(0, 1, 0));
  CHECK(!vring_need_event(0, 0, 0));  // nothing moved
  CHECK(!vring_need_event(5, 5, 4));  // the driver waits for entry 5 itself: index 6
  CHECK(vring_need_event(5, 6, 4));
  CHECK(!vring_need_event(3, 6, 4));  // behind old: already signalled for
  CHECK(vring_need_event(0xFFFF, 0x0001, 0xFFFE));  // the window wraps around 0
  CHECK(vring_need_event(0x0000, 0x0001, 0xFFFE));
  CHECK(!vring_need_event(0x0001, 0x0001, 0xFFFE));
  CHECK(!vring_need_event(0xFFFD, 0x0002, 0xFFFE));
  CHECK(vring_need_event(0x8000, 0x0000, 0x7FFF));  // a 32769-entry window: not a signed compare
  // Against the definition, near the wrap and anywhere.
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; i++) {
    uint16_t old_idx = static_cast<uint16_t>(i < 10000 ? 0xFFF0 + rng() % 32 : rng());
    uint16_t new_idx = static_cast<uint16_t>(old_idx + rng() % 40);
    uint16_t event = static_cast<uint16_t>(i % 2 ? old_idx - 5 + rng() % 50 : rng());
    if (vring_need_event(event, new_idx, old_idx) != passed_by_walking(event, new_idx, old_idx)) {
      CHECK(!"vring_need_event disagrees with the definition");
      break;
    }
  }
}

TEST("event idx: the device asks for a kick (avail_event) only when it finds the ring empty") {
  GuestMemory m = GuestMemory::anonymous(16ULL << 20);
  DriverRing driver(m);
  Virtqueue q = ready_queue(m, true);
  driver.set_avail_event(0x7777);
  CHECK_EQ(consume_all(q, m), 0);
  CHECK_EQ(driver.avail_event(), 0);  // empty at once: notify me for entry 0
  driver.post(3);
  DescriptorChain c;
  std::string why;
  CHECK(q.pop(m, &c, &why) == Virtqueue::Pop::Chain);
  driver.set_avail_event(0x7777);
  CHECK(q.pop(m, &c, &why) == Virtqueue::Pop::Chain);
  CHECK_EQ(driver.avail_event(), 0x7777);  // busy: left behind, so the driver does not kick
  CHECK(q.pop(m, &c, &why) == Virtqueue::Pop::Chain);
  CHECK(q.pop(m, &c, &why) == Virtqueue::Pop::Empty);
  CHECK_EQ(driver.avail_event(), 3);
  // Near the wrap: the device's position, not the ring slot, is what it publishes.
  q.next_avail = driver.avail_idx = 0xFFFE;
  driver.post(3);
  CHECK_EQ(consume_all(q, m), 3);
  CHECK_EQ(driver.avail_event(), 1);
  CHECK_EQ(driver.avail_idx, 1);
}

TEST("event idx: without the feature the device never writes avail_event and always interrupts") {
  GuestMemory m = GuestMemory::anonymous(16ULL << 20);
  DriverRing driver(m);
  Virtqueue q = ready_queue(m, false);
  driver.set_avail_event(0x7777);
  driver.set_used_event(0x7777);
  driver.post(2);
  CHECK_EQ(consume_all(q, m), 2);
  CHECK_EQ(driver.avail_event(), 0x7777);
  CHECK(q.take_used_signal(m));
  CHECK(q.take_used_signal(m));
}

TEST("event idx: the device interrupts only when the used index passes used_event, across the wrap") {
  GuestMemory m = GuestMemory::anonymous(16ULL << 20);
  DriverRing driver(m);
  Virtqueue q = ready_queue(m, true);
  driver.set_used_event(0x7777);
  CHECK(q.take_used_signal(m));  // the first decision after the queue starts always interrupts
  CHECK(!q.take_used_signal(m)); // nothing new
  driver.set_used_event(1);      // "interrupt me once entry 1 is used"
  driver.post(1);
  CHECK_EQ(consume_all(q, m), 1);
  CHECK(!q.take_used_signal(m));  // used idx 0 -> 1: entry 1 not used yet
  driver.post(2);
  CHECK_EQ(consume_all(q, m), 2);
  CHECK(q.take_used_signal(m));  // 1 -> 3 passed it
  CHECK_EQ(driver.used_idx(), 3);
  // The driver's index wraps at 65536: 0xFFFE -> 0xFFFF -> 0x0001.
  q.next_avail = driver.avail_idx = q.next_used = 0xFFFE;
  q.forget_signalled();
  CHECK(q.take_used_signal(m));
  driver.set_used_event(0xFFFF);
  driver.post(1);
  CHECK_EQ(consume_all(q, m), 1);
  CHECK(!q.take_used_signal(m));
  driver.post(2);
  CHECK_EQ(consume_all(q, m), 2);
  CHECK_EQ(driver.used_idx(), 1);
  CHECK(q.take_used_signal(m));
  // A driver that disabled interrupts (Linux writes used_event behind the index) gets none.
  driver.set_used_event(0);
  driver.post(3);
  CHECK_EQ(consume_all(q, m), 3);
  CHECK(!q.take_used_signal(m));
}

namespace {

struct CountingInterrupt : InterruptEvent {
  int* count;
  explicit CountingInterrupt(int* c) : count(c) {}
  void trigger() override { (*count)++; }
};

/** A device with one queue that offers event_idx (or not); its work runs through the link. */
std::unique_ptr<OneQueueDevice> ring_device(bool offer_event_idx) {
  return std::make_unique<OneQueueDevice>("ring-test", 4, offer_event_idx ? kFeatureRingEventIdx : 0, 256);
}

void reg(VirtioMmioTransport& t, uint64_t offset, uint32_t v) { t.write(offset, reinterpret_cast<const uint8_t*>(&v), 4); }
uint32_t reg(VirtioMmioTransport& t, uint64_t offset) {
  uint32_t v = 0;
  t.read(offset, reinterpret_cast<uint8_t*>(&v), 4);
  return v;
}

/** Negotiates (asking for event_idx if `want`), sets the queue up and sets DRIVER_OK. */
void drive_to_ok(VirtioMmioTransport& t, bool want) {
  using namespace mmio;
  reg(t, kStatus, kStatusAcknowledge | kStatusDriver);
  reg(t, kDriverFeaturesSel, 0);
  reg(t, kDriverFeatures, want ? static_cast<uint32_t>(kFeatureRingEventIdx) : 0);
  reg(t, kDriverFeaturesSel, 1);
  reg(t, kDriverFeatures, 1);  // VERSION_1
  reg(t, kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  reg(t, kQueueSel, 0);
  reg(t, kQueueNum, kSize);
  reg(t, kQueueDescLow, static_cast<uint32_t>(kDesc));
  reg(t, kQueueDriverLow, static_cast<uint32_t>(kAvail));
  reg(t, kQueueDeviceLow, static_cast<uint32_t>(kUsed));
  reg(t, kQueueReady, 1);
  reg(t, kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
}

/** One batch of device work: serve every available buffer, then one signal_used(). */
void serve_batch(OneQueueDevice* d) {
  CHECK(d->link->with_queues([](VirtioQueues& q) {
    DescriptorChain c;
    while (q.pop(0, &c) == Virtqueue::Pop::Chain) q.push_used(0, c.head, 0);
    q.signal_used();
  }));
}

}  // namespace

TEST("event idx: the transport honours used_event only if the device offered it and the driver took it") {
  for (int round = 0; round < 3; round++) {
    const bool offer = round != 0, want = round == 2;
    GuestMemory m = GuestMemory::anonymous(16ULL << 20);
    DriverRing driver(m);
    int interrupts = 0;
    auto device = ring_device(offer);
    OneQueueDevice* d = device.get();
    VirtioMmioTransport t(std::move(device), m, std::make_unique<CountingInterrupt>(&interrupts));
    drive_to_ok(t, want);
    CHECK_EQ(reg(t, mmio::kStatus) & kStatusFeaturesOk, kStatusFeaturesOk);
    driver.set_used_event(0);  // interrupts "off" the way Linux writes it
    driver.post(2);
    serve_batch(d);
    driver.post(2);
    serve_batch(d);
    // Batches without event_idx always interrupt; with it, only the first (no used_event seen yet).
    CHECK_EQ(interrupts, want ? 1 : 2);
    CHECK_EQ(driver.avail_event(), want ? 4 : 0);
    driver.set_used_event(5);
    driver.post(2);
    serve_batch(d);  // used idx 4 -> 6 passes 5
    CHECK_EQ(interrupts, want ? 2 : 3);
    CHECK_EQ(reg(t, mmio::kInterruptStatus), kInterruptUsedBuffer);
  }
}

TEST("event idx: a snapshot whose driver took event_idx is refused by a device that does not offer it") {
  GuestMemory m = GuestMemory::anonymous(16ULL << 20);
  DriverRing driver(m);
  int interrupts = 0;
  VirtioMmioTransport saved(ring_device(true), m, std::make_unique<CountingInterrupt>(&interrupts));
  drive_to_ok(saved, true);
  StateBlob state = saved.save();
  VirtioMmioTransport same(ring_device(true), m, std::make_unique<CountingInterrupt>(&interrupts));
  same.restore(state);
  CHECK_EQ(reg(same, mmio::kStatus) & kStatusDriverOk, kStatusDriverOk);
  VirtioMmioTransport other(ring_device(false), m, std::make_unique<CountingInterrupt>(&interrupts));
  CHECK_THROWS(other.restore(state), "the driver accepted features 0x20000000 that the device does not offer");
}
