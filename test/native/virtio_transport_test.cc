// The virtio-mmio transport's snapshot rule for queues another process serves
// (vhost-user, virtio-fs): a save is refused while a ring holds a request, since the
// request's state lives in that process; an idle ring saves.
#include <cstring>

#include "check.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/virtio_spec.h"
#include "memory/guest_memory.h"

using namespace vmrun;
using namespace vmrun::virtio;

namespace {

struct NoInterrupt : InterruptEvent {
  void trigger() override {}
};

/** A device whose one queue is served elsewhere, as virtio-fs's are by virtiofsd. */
struct ServedElsewhere : VirtioDevice {
  std::string name() const override { return "served-elsewhere"; }
  uint32_t device_type() const override { return 26; }
  uint64_t features() const override { return 0; }
  uint16_t queue_count() const override { return 1; }
  uint16_t queue_max_size(uint16_t) const override { return 8; }
  uint32_t config_size() const override { return 0; }
  void read_config(uint32_t, uint8_t*, uint32_t) override {}
  void attach(VirtioLink*) override {}
  void activate(uint64_t) override {}
  void notify(uint16_t) override {}
  void reset() override {}
  bool queues_served_elsewhere() const override { return true; }
  StateBlob save() override { return StateBlob{1, 0, 0, 0}; }
  void restore(const StateBlob&) override {}
};

constexpr uint64_t kDesc = 0x1000, kAvail = 0x2000, kUsed = 0x3000;

void write32(VirtioMmioTransport& t, uint64_t offset, uint32_t value) {
  uint8_t b[4];
  std::memcpy(b, &value, 4);
  t.write(offset, b, 4);
}

/** Drives the transport to DRIVER_OK with queue 0 (8 entries) at kDesc/kAvail/kUsed. */
void bring_up(VirtioMmioTransport& t) {
  write32(t, mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  write32(t, mmio::kDriverFeaturesSel, 1);
  write32(t, mmio::kDriverFeatures, 1);  // VIRTIO_F_VERSION_1 (bit 32)
  write32(t, mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  write32(t, mmio::kQueueSel, 0);
  write32(t, mmio::kQueueNum, 8);
  write32(t, mmio::kQueueDescLow, kDesc);
  write32(t, mmio::kQueueDriverLow, kAvail);
  write32(t, mmio::kQueueDeviceLow, kUsed);
  write32(t, mmio::kQueueReady, 1);
  write32(t, mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
}

void set_index(GuestMemory& m, uint64_t ring, uint16_t index) { std::memcpy(m.range(ring + 2, 2), &index, 2); }

}  // namespace

TEST("virtio transport: a ring served elsewhere saves only when its used index has caught up") {
  GuestMemory memory = GuestMemory::anonymous(1 << 20);
  VirtioMmioTransport t(std::make_unique<ServedElsewhere>(), memory, std::make_unique<NoInterrupt>());
  bring_up(t);
  CHECK(t.failures().count == 0);
  set_index(memory, kAvail, 5);
  set_index(memory, kUsed, 3);
  CHECK_THROWS(t.save(), "2 requests in flight on queue 0");
  set_index(memory, kUsed, 5);
  StateBlob saved = t.save();
  CHECK(!saved.empty());
  // Wrapping indices count too: 1 after 65535 is two requests.
  set_index(memory, kAvail, 1);
  set_index(memory, kUsed, 65535);
  CHECK_THROWS(t.save(), "2 requests in flight");
}
