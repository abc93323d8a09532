#include "devices/virtio/mmio_transport.h"

#include <cstdio>

#include <cstring>

#include "common/hex.h"
#include "common/state_codec.h"
#include "devices/virtio/virtio_spec.h"

namespace vmrun::virtio {

namespace {

constexpr uint32_t kStateVersion = 1;
enum StateTag : uint32_t { kTagTransport = 1, kTagQueues = 2, kTagDevice = 3 };

/** The transport's registers in a snapshot. */
struct TransportState {
  uint32_t device_type;
  uint32_t status;
  uint32_t device_features_sel;
  uint32_t driver_features_sel;
  uint64_t driver_features;
  uint32_t queue_sel;
  uint32_t interrupt_status;
  uint32_t config_generation;
  uint32_t queue_count;
};
static_assert(sizeof(TransportState) == 40, "no padding: snapshots hold these bytes");

/** One virtqueue in a snapshot: what the driver programmed and where the device is. */
struct QueueState {
  uint64_t desc_table;
  uint64_t avail_ring;
  uint64_t used_ring;
  uint16_t size;
  uint16_t ready;
  uint16_t next_avail;
  uint16_t next_used;
};
static_assert(sizeof(QueueState) == 32, "no padding: snapshots hold these bytes");

constexpr uint32_t kKnownStatusBits =
    kStatusAcknowledge | kStatusDriver | kStatusDriverOk | kStatusFeaturesOk | kStatusDeviceNeedsReset | kStatusFailed;

void set_low(uint64_t* v, uint32_t low) { *v = (*v & ~0xFFFF'FFFFULL) | low; }
void set_high(uint64_t* v, uint32_t high) { *v = (*v & 0xFFFF'FFFFULL) | (static_cast<uint64_t>(high) << 32); }

}  // namespace

VirtioMmioTransport::VirtioMmioTransport(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, std::unique_ptr<InterruptEvent> interrupt)
    : device_(std::move(device)), memory_(memory), interrupt_(std::move(interrupt)) {
  for (uint16_t i = 0; i < device_->queue_count(); i++) queues_.emplace_back(std::min(device_->queue_max_size(i), kMaxQueueSize));
  device_->attach(this);
}

VirtioMmioTransport::~VirtioMmioTransport() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  unpaused_.notify_all();
  // The device's threads end (and stop calling with_queues) before the transport goes.
  device_.reset();
}

VirtioMmioTransport::Failures VirtioMmioTransport::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

bool VirtioMmioTransport::live_locked() const { return (status_ & kStatusDriverOk) && !(status_ & kStatusDeviceNeedsReset); }

Virtqueue* VirtioMmioTransport::selected_queue() { return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr; }

void VirtioMmioTransport::read(uint64_t offset, uint8_t* data, uint32_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  std::memset(data, 0, size);
  if (offset >= mmio::kConfig) {
    uint64_t at = offset - mmio::kConfig;
    if (at < device_->config_size() && size <= device_->config_size() - at) device_->read_config(static_cast<uint32_t>(at), data, size);
    return;
  }
  // Registers are 32 bits wide and read whole (spec 4.2.2.2); anything else reads 0.
  if (size != 4 || offset % 4 != 0) return;
  uint32_t v = read_register(offset);
  std::memcpy(data, &v, 4);
}

uint32_t VirtioMmioTransport::read_register(uint64_t offset) {
  using namespace mmio;
  const uint64_t offered = device_->features() | kFeatureVersion1;
  Virtqueue* q = selected_queue();
  switch (offset) {
    case kMagicValue: return kMagic;
    case kVersion: return kVersion2;
    case kDeviceId: return device_->device_type();
    case kVendorId: return kVendor;
    case kDeviceFeatures:
      return device_features_sel_ == 0 ? static_cast<uint32_t>(offered) : device_features_sel_ == 1 ? static_cast<uint32_t>(offered >> 32) : 0;
    case kQueueNumMax: return q ? q->max_size() : 0;
    case kQueueReady: return q && q->config.ready ? 1 : 0;
    case kInterruptStatus:
      return interrupt_status_ | (device_->queues_served_elsewhere() && live_locked() ? kInterruptUsedBuffer : 0);
    case kStatus: return status_;
    case kQueueDescLow: return q ? static_cast<uint32_t>(q->config.desc_table) : 0;
    case kQueueDescHigh: return q ? static_cast<uint32_t>(q->config.desc_table >> 32) : 0;
    case kQueueDriverLow: return q ? static_cast<uint32_t>(q->config.avail_ring) : 0;
    case kQueueDriverHigh: return q ? static_cast<uint32_t>(q->config.avail_ring >> 32) : 0;
    case kQueueDeviceLow: return q ? static_cast<uint32_t>(q->config.used_ring) : 0;
    case kQueueDeviceHigh: return q ? static_cast<uint32_t>(q->config.used_ring >> 32) : 0;
    // No shared memory regions: their length reads as all ones (spec 4.2.2.1).
    case kShmLenLow:
    case kShmLenHigh: return 0xFFFF'FFFF;
    case kConfigGeneration: return config_generation_;
    default: return 0;
  }
}

void VirtioMmioTransport::write(uint64_t offset, const uint8_t* data, uint32_t size) {
  int notify = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (offset >= mmio::kConfig) {
      uint64_t at = offset - mmio::kConfig;
      if (at < device_->config_size() && size <= device_->config_size() - at) {
        device_->write_config(static_cast<uint32_t>(at), data, size);
        config_generation_++;
      }
      return;
    }
    if (size != 4 || offset % 4 != 0) return;
    uint32_t v;
    std::memcpy(&v, data, 4);
    if (offset == mmio::kQueueNotify) {
      // Notifications of a stopped device or an unknown queue are dropped.
      if (live_locked() && v < queues_.size()) notify = static_cast<int>(v);
    } else {
      write_register(offset, v);
    }
  }
  // Outside the lock: a device may take it (with_queues) to serve the queue right here.
  if (notify >= 0) device_->notify(static_cast<uint16_t>(notify));
}

void VirtioMmioTransport::write_register(uint64_t offset, uint32_t value) {
  using namespace mmio;
  Virtqueue* q = selected_queue();
  // The driver programs a queue only while it is not ready (spec 4.2.2.3).
  const bool queue_writable = q && !q->config.ready;
  const bool negotiating = !(status_ & kStatusFeaturesOk);
  switch (offset) {
    case kDeviceFeaturesSel: device_features_sel_ = value; break;
    case kDriverFeaturesSel: driver_features_sel_ = value; break;
    case kDriverFeatures:
      if (!negotiating) break;
      if (driver_features_sel_ == 0) set_low(&driver_features_, value);
      else if (driver_features_sel_ == 1) set_high(&driver_features_, value);
      break;
    case kQueueSel: queue_sel_ = value; break;
    case kQueueNum:
      if (queue_writable) q->config.size = static_cast<uint16_t>(value > 0xFFFF ? 0 : value);  // checked when made ready
      break;
    case kQueueDescLow: if (queue_writable) set_low(&q->config.desc_table, value); break;
    case kQueueDescHigh: if (queue_writable) set_high(&q->config.desc_table, value); break;
    case kQueueDriverLow: if (queue_writable) set_low(&q->config.avail_ring, value); break;
    case kQueueDriverHigh: if (queue_writable) set_high(&q->config.avail_ring, value); break;
    case kQueueDeviceLow: if (queue_writable) set_low(&q->config.used_ring, value); break;
    case kQueueDeviceHigh: if (queue_writable) set_high(&q->config.used_ring, value); break;
    case kQueueReady:
      if (!q) break;
      if (value == 1 && !q->config.ready) {
        std::string why = q->check_layout(memory_);
        if (!why.empty()) {
          fail_locked("queue " + std::to_string(queue_sel_) + ": " + why);
          break;
        }
        q->config.ready = true;
        q->next_avail = q->next_used = 0;
        q->forget_signalled();
      } else if (value == 0) {
        q->config.ready = false;
      }
      break;
    case kInterruptAck: interrupt_status_ &= ~value; break;
    case kStatus: write_status(value); break;
    default: break;  // read-only or unknown: ignored
  }
}

void VirtioMmioTransport::write_status(uint32_t value) {
  if (value == 0) {
    reset_locked();
    return;
  }
  const uint32_t kept = status_ & kStatusDeviceNeedsReset;
  value &= ~kStatusDeviceNeedsReset;
  if ((status_ & ~kStatusDeviceNeedsReset) & ~value) {
    fail_locked("the driver cleared device status bits without a reset");
    return;
  }
  const uint32_t added = value & ~status_;
  if (added & kStatusFeaturesOk) {
    const uint64_t offered = device_->features() | kFeatureVersion1;
    // Not accepting FEATURES_OK is how a device refuses a feature set (spec 3.1.1).
    if ((driver_features_ & ~offered) || !(driver_features_ & kFeatureVersion1)) value &= ~kStatusFeaturesOk;
  }
  status_ = value | kept;
  if ((added & kStatusDriverOk) && !kept) {
    if (!(status_ & kStatusFeaturesOk)) {
      fail_locked("the driver set DRIVER_OK before the features were accepted");
      return;
    }
    apply_ring_features_locked();
    device_->activate(driver_features_);
  }
}

void VirtioMmioTransport::apply_ring_features_locked() {
  const bool event_idx = (driver_features_ & kFeatureRingEventIdx) != 0;
  for (auto& q : queues_) q.event_idx = event_idx;
}

void VirtioMmioTransport::reset_locked() {
  status_ = 0;
  device_features_sel_ = driver_features_sel_ = 0;
  driver_features_ = 0;
  queue_sel_ = 0;
  interrupt_status_ = 0;
  for (auto& q : queues_) q.reset();
  device_->reset();
}

void VirtioMmioTransport::fail_locked(const std::string& why) {
  if (status_ & kStatusDeviceNeedsReset) return;
  status_ |= kStatusDeviceNeedsReset;
  failures_.count++;
  failures_.last = why;
  // On stderr too (a background VM's host.log), for the first few: a hostile guest can
  // break and reset a device in a loop, and the count stays in stats().
  if (failures_.count <= kFailuresLogged)
    std::fprintf(stderr, "vmrun: %s: the guest broke the device, which needs a reset: %s\n", device_->name().c_str(), why.c_str());
  device_->reset();
  interrupt_status_ |= kInterruptConfigChange;
  interrupt_->trigger();
}

bool VirtioMmioTransport::with_queues(const std::function<void(VirtioQueues&)>& work) {
  std::unique_lock<std::mutex> lock(mu_);
  unpaused_.wait(lock, [&] { return !paused_ || closing_; });
  if (closing_ || !live_locked()) return false;
  work(*this);
  return true;
}

Virtqueue::Pop VirtioMmioTransport::pop(uint16_t index, DescriptorChain* chain) {
  if (!live_locked() || index >= queues_.size()) return Virtqueue::Pop::Empty;
  std::string why;
  auto r = queues_[index].pop(memory_, chain, &why);
  if (r == Virtqueue::Pop::Broken) fail_locked("queue " + std::to_string(index) + ": " + why);
  return r;
}

void VirtioMmioTransport::push_used(uint16_t index, uint16_t head, uint32_t written) {
  if (!live_locked() || index >= queues_.size()) return;
  if (!queues_[index].push_used(memory_, head, written)) fail_locked("queue " + std::to_string(index) + ": the used ring is not writable");
}

void VirtioMmioTransport::push_used(uint16_t index, const UsedBuffer* buffers, size_t count) {
  if (!live_locked() || index >= queues_.size()) return;
  if (!queues_[index].push_used(memory_, buffers, count)) fail_locked("queue " + std::to_string(index) + ": the used ring is not writable");
}

void VirtioMmioTransport::signal_used() {
  if (!live_locked()) return;
  // One decision per queue (each moves its own signalled index), then one interrupt:
  // with event_idx, none if no queue's used index passed the driver's used_event.
  bool wanted = false;
  for (auto& q : queues_)
    if (q.config.ready && q.take_used_signal(memory_)) wanted = true;
  if (!wanted) return;
  interrupt_status_ |= kInterruptUsedBuffer;
  interrupt_->trigger();
}

void VirtioMmioTransport::pause_work() {
  // Taking the lock waits out any queue work in progress; later work waits for resume.
  std::lock_guard<std::mutex> lock(mu_);
  paused_ = true;
}

void VirtioMmioTransport::resume_work() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
  }
  unpaused_.notify_all();
}

void VirtioMmioTransport::check_rings_idle_locked() const {
  // Another process serves these queues: the transport's own ring indices are not its
  // progress, and its requests in flight cannot be captured. With the vCPUs stopped, a
  // ring whose used index has caught up with its available index holds none.
  for (size_t i = 0; i < queues_.size(); i++) {
    const VirtqueueConfig& c = queues_[i].config;
    if (!c.ready) continue;
    const uint8_t* avail = memory_.range(c.avail_ring, 4);
    const uint8_t* used = memory_.range(c.used_ring, 4);
    if (!avail || !used) throw VmrunError(ErrorCode::Guest, name() + ": queue " + std::to_string(i) + " is outside guest RAM");
    uint16_t avail_idx, used_idx;
    std::memcpy(&avail_idx, avail + 2, 2);
    std::memcpy(&used_idx, used + 2, 2);
    if (avail_idx != used_idx)
      throw VmrunError(ErrorCode::Usage, name() + ": the guest has " + std::to_string(static_cast<uint16_t>(avail_idx - used_idx)) +
                                             " requests in flight on queue " + std::to_string(i) + ", which a snapshot cannot hold");
  }
}

StateBlob VirtioMmioTransport::save() {
  std::lock_guard<std::mutex> lock(mu_);
  StateWriter w(kStateVersion);
  TransportState t{device_->device_type(), status_, device_features_sel_, driver_features_sel_, driver_features_,
                   queue_sel_, interrupt_status_, config_generation_, static_cast<uint32_t>(queues_.size())};
  w.record(kTagTransport, t);
  if (device_->queues_served_elsewhere() && live_locked()) check_rings_idle_locked();
  std::vector<QueueState> qs;
  for (const auto& q : queues_)
    qs.push_back({q.config.desc_table, q.config.avail_ring, q.config.used_ring, q.config.size, q.config.ready ? uint16_t{1} : uint16_t{0},
                  q.next_avail, q.next_used});
  w.record(kTagQueues, qs.data(), qs.size() * sizeof(QueueState));
  StateBlob device = device_->save();
  w.record(kTagDevice, device.data(), device.size());
  return w.take();
}

void VirtioMmioTransport::restore(const StateBlob& state) {
  const std::string what = name() + " state";
  StateBlob device_state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    StateReader r(state, what, kStateVersion);
    auto t = r.expect_obj<TransportState>(kTagTransport);
    if (t.device_type != device_->device_type())
      throw VmrunError(ErrorCode::Snapshot, what + ": saved for virtio device type " + std::to_string(t.device_type) + ", this slot holds " + std::to_string(device_->device_type()));
    if (t.queue_count != queues_.size()) throw VmrunError(ErrorCode::Snapshot, what + ": " + std::to_string(t.queue_count) + " queues, the device has " + std::to_string(queues_.size()));
    if (t.status & ~kKnownStatusBits) throw VmrunError(ErrorCode::Snapshot, what + ": unknown device status bits");
    // Features this device does not offer (a snapshot of another vmrun build) would be
    // promises it cannot keep: event_idx unhonoured leaves the driver waiting for a kick.
    if (const uint64_t unoffered = t.driver_features & ~(device_->features() | kFeatureVersion1))
      throw VmrunError(ErrorCode::Snapshot, what + ": the driver accepted features " + hex(unoffered) + " that the device does not offer");
    size_t len;
    const uint8_t* p = r.expect(kTagQueues, &len);
    if (len != queues_.size() * sizeof(QueueState)) throw VmrunError(ErrorCode::Snapshot, what + ": the queue record has the wrong size");
    // A snapshot is untrusted: its queues pass the same checks as the driver's set-up.
    std::vector<Virtqueue> restored;
    for (size_t i = 0; i < queues_.size(); i++) {
      QueueState qs;
      std::memcpy(&qs, p + i * sizeof(QueueState), sizeof qs);
      Virtqueue q(queues_[i].max_size());
      q.config = {qs.size, qs.ready != 0, qs.desc_table, qs.avail_ring, qs.used_ring};
      q.next_avail = qs.next_avail;
      q.next_used = qs.next_used;
      if (q.config.ready) {
        std::string why = q.check_layout(memory_);
        if (!why.empty()) throw VmrunError(ErrorCode::Snapshot, what + ": queue " + std::to_string(i) + ": " + why);
      }
      restored.push_back(q);
    }
    const uint8_t* d = r.expect(kTagDevice, &len);
    device_state.assign(d, d + len);
    if (!r.at_end()) throw VmrunError(ErrorCode::Snapshot, what + " has trailing records");
    queues_ = std::move(restored);
    status_ = t.status;
    device_features_sel_ = t.device_features_sel;
    driver_features_sel_ = t.driver_features_sel;
    driver_features_ = t.driver_features;
    queue_sel_ = t.queue_sel;
    interrupt_status_ = t.interrupt_status;
    config_generation_ = t.config_generation;
  }
  device_->restore(device_state);
  std::lock_guard<std::mutex> lock(mu_);
  if (live_locked()) {
    apply_ring_features_locked();
    device_->activate(driver_features_);
  }
}

}  // namespace vmrun::virtio
