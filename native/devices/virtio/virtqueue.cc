#include "devices/virtio/virtqueue.h"

#include <atomic>
#include <cstring>

#include "common/hex.h"
#include "devices/virtio/virtio_spec.h"

namespace vmrun::virtio {

namespace {

// Split-ring layout (spec 2.7): descriptor 16 bytes; avail = flags, idx, ring[size],
// used_event; used = flags, idx, ring[size] of {id, len}, avail_event.
struct Descriptor {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(Descriptor) == 16);
struct UsedElement {
  uint32_t id;
  uint32_t len;
};
static_assert(sizeof(UsedElement) == 8);

constexpr uint64_t kAvailIdxOffset = 2, kAvailRingOffset = 4;
constexpr uint64_t kUsedIdxOffset = 2, kUsedRingOffset = 4;
// used_event follows the available ring's entries, avail_event the used ring's (spec 2.7.6, 2.7.8).
uint64_t used_event_offset(uint16_t size) { return kAvailRingOffset + 2ULL * size; }
uint64_t avail_event_offset(uint16_t size) { return kUsedRingOffset + 8ULL * size; }
constexpr uint16_t kKnownDescFlags = kDescNext | kDescWrite | kDescIndirect;

uint64_t desc_table_bytes(uint16_t size) { return 16ULL * size; }
uint64_t avail_ring_bytes(uint16_t size) { return 6 + 2ULL * size; }
uint64_t used_ring_bytes(uint16_t size) { return 6 + 8ULL * size; }

/** Reads a u16 the guest may be writing concurrently, once. */
bool load_u16(const GuestMemory& m, uint64_t gpa, uint16_t* out) {
  uint8_t* p = m.range(gpa, 2);
  if (!p) return false;
  *out = __atomic_load_n(reinterpret_cast<uint16_t*>(p), __ATOMIC_ACQUIRE);
  return true;
}

std::vector<iovec> iovecs_of(const std::vector<BufferSegment>& segments, uint64_t offset, uint64_t max) {
  std::vector<iovec> out;
  for (const auto& s : segments) {
    if (max == 0) break;
    if (offset >= s.length) {
      offset -= s.length;
      continue;
    }
    uint64_t n = std::min<uint64_t>(s.length - offset, max);
    out.push_back({s.host + offset, static_cast<size_t>(n)});
    max -= n;
    offset = 0;
  }
  return out;
}

}  // namespace

size_t DescriptorChain::read(uint64_t offset, void* dst, size_t len) const {
  size_t done = 0;
  for (const auto& v : iovecs_of(readable, offset, len)) {
    std::memcpy(static_cast<uint8_t*>(dst) + done, v.iov_base, v.iov_len);
    done += v.iov_len;
  }
  return done;
}

size_t DescriptorChain::write(uint64_t offset, const void* src, size_t len) const {
  size_t done = 0;
  for (const auto& v : iovecs_of(writable, offset, len)) {
    std::memcpy(v.iov_base, static_cast<const uint8_t*>(src) + done, v.iov_len);
    done += v.iov_len;
  }
  return done;
}

std::vector<iovec> DescriptorChain::readable_iovecs(uint64_t offset, uint64_t max) const { return iovecs_of(readable, offset, max); }
std::vector<iovec> DescriptorChain::writable_iovecs(uint64_t offset, uint64_t max) const { return iovecs_of(writable, offset, max); }

std::string Virtqueue::check_layout(const GuestMemory& memory) const {
  const uint16_t size = config.size;
  if (size == 0 || size > max_size_ || (size & (size - 1)) != 0)
    return "queue size " + std::to_string(size) + " is not a power of two between 1 and " + std::to_string(max_size_);
  // Alignments from spec 2.7 (table "Virtqueue Part Alignment").
  if (config.desc_table % 16 != 0) return "descriptor table " + hex(config.desc_table) + " is not 16-byte aligned";
  if (config.avail_ring % 2 != 0) return "available ring " + hex(config.avail_ring) + " is not 2-byte aligned";
  if (config.used_ring % 4 != 0) return "used ring " + hex(config.used_ring) + " is not 4-byte aligned";
  if (!memory.contains(config.desc_table, desc_table_bytes(size))) return "descriptor table " + hex(config.desc_table) + " is outside guest RAM";
  if (!memory.contains(config.avail_ring, avail_ring_bytes(size))) return "available ring " + hex(config.avail_ring) + " is outside guest RAM";
  if (!memory.contains(config.used_ring, used_ring_bytes(size))) return "used ring " + hex(config.used_ring) + " is outside guest RAM";
  return "";
}

Virtqueue::Pop Virtqueue::pop(const GuestMemory& memory, DescriptorChain* chain, std::string* why) {
  if (!config.ready) return Pop::Empty;
  const uint16_t size = config.size;
  uint16_t avail_idx;
  if (!load_u16(memory, config.avail_ring + kAvailIdxOffset, &avail_idx)) {
    *why = "available ring is outside guest RAM";
    return Pop::Broken;
  }
  if (avail_idx == next_avail && (!event_idx || arm_notification(memory, &avail_idx))) return Pop::Empty;
  const uint16_t pending = static_cast<uint16_t>(avail_idx - next_avail);
  if (pending > size) {
    *why = "available index " + std::to_string(avail_idx) + " is " + std::to_string(pending) + " entries ahead of the device, more than the queue size " + std::to_string(size);
    return Pop::Broken;
  }
  uint16_t head;
  if (!load_u16(memory, config.avail_ring + kAvailRingOffset + 2ULL * (next_avail % size), &head)) {
    *why = "available ring is outside guest RAM";
    return Pop::Broken;
  }
  if (head >= size) {
    *why = "available ring entry " + std::to_string(head) + " is not a descriptor of a queue of size " + std::to_string(size);
    return Pop::Broken;
  }

  chain->head = head;
  chain->readable.clear();
  chain->writable.clear();
  chain->readable_length = chain->writable_length = 0;
  uint16_t index = head;
  for (uint32_t count = 1;; count++) {
    // A chain visits each descriptor at most once, so a longer one is a loop.
    if (count > size) {
      *why = "descriptor chain from " + std::to_string(head) + " is longer than the queue size " + std::to_string(size) + " (a loop)";
      return Pop::Broken;
    }
    Descriptor d;
    if (!memory.read(config.desc_table + 16ULL * index, &d, sizeof d)) {
      *why = "descriptor table is outside guest RAM";
      return Pop::Broken;
    }
    const std::string where = "descriptor " + std::to_string(index) + ": ";
    if (d.flags & ~kKnownDescFlags) {
      *why = where + "unknown flags " + hex(d.flags);
      return Pop::Broken;
    }
    if (d.flags & kDescIndirect) {
      *why = where + "indirect descriptors were not offered";
      return Pop::Broken;
    }
    if (d.len > 0) {
      uint8_t* host = memory.range(d.addr, d.len);
      if (!host) {
        *why = where + "buffer " + hex(d.addr) + " + " + std::to_string(d.len) + " is outside guest RAM";
        return Pop::Broken;
      }
      if (d.flags & kDescWrite) {
        chain->writable.push_back({host, d.len});
        chain->writable_length += d.len;
      } else {
        // Spec 2.7.4.2: device-readable descriptors come before device-writable ones.
        if (!chain->writable.empty()) {
          *why = where + "a device-readable buffer follows a device-writable one";
          return Pop::Broken;
        }
        chain->readable.push_back({host, d.len});
        chain->readable_length += d.len;
      }
    }
    if (!(d.flags & kDescNext)) break;
    if (d.next >= size) {
      *why = where + "next " + std::to_string(d.next) + " is outside the queue of size " + std::to_string(size);
      return Pop::Broken;
    }
    index = d.next;
  }
  next_avail++;
  return Pop::Chain;
}

bool Virtqueue::push_used(const GuestMemory& memory, uint16_t head, uint32_t written) {
  const UsedBuffer one{head, written};
  return push_used(memory, &one, 1);
}

bool Virtqueue::push_used(const GuestMemory& memory, const UsedBuffer* buffers, size_t count) {
  const uint16_t size = config.size;
  if (!config.ready || size == 0) return false;
  uint8_t* idx = memory.range(config.used_ring + kUsedIdxOffset, 2);
  if (!idx) return false;
  uint16_t at = next_used;
  for (size_t i = 0; i < count; i++, at++) {
    UsedElement e{buffers[i].head, buffers[i].written};
    if (!memory.write_obj(config.used_ring + kUsedRingOffset + 8ULL * (at % size), e)) return false;
  }
  next_used = at;
  // The elements must be visible before the index that publishes them.
  __atomic_store_n(reinterpret_cast<uint16_t*>(idx), next_used, __ATOMIC_RELEASE);
  return true;
}

// The device is about to wait for the driver: it asks to be notified of the buffer
// after the last one it took (avail_event = next_avail), then looks once more, since
// the driver may have added one before it could see the request (spec 2.7.10).
// Returns true if the ring is still empty; otherwise `*avail_idx` is the new index.
// While the device is busy it leaves avail_event behind, so the driver does not kick.
bool Virtqueue::arm_notification(const GuestMemory& memory, uint16_t* avail_idx) {
  uint8_t* event = memory.range(config.used_ring + avail_event_offset(config.size), 2);
  if (!event) return true;  // check_layout() covered it; nothing to arm otherwise
  __atomic_store_n(reinterpret_cast<uint16_t*>(event), next_avail, __ATOMIC_RELAXED);
  // The store must be visible before the index is read again (a store-load order).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!load_u16(memory, config.avail_ring + kAvailIdxOffset, avail_idx)) return true;
  return *avail_idx == next_avail;
}

bool Virtqueue::take_used_signal(const GuestMemory& memory) {
  if (!event_idx) return true;
  const uint16_t old = signalled_used_;
  const bool valid = signalled_valid_;
  signalled_used_ = next_used;
  signalled_valid_ = true;
  if (!valid) return true;
  if (old == next_used) return false;  // nothing new since the last decision
  // The used index (published by push_used) must be visible before used_event is read,
  // or the driver may re-arm in between and wait for an interrupt that never comes.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint16_t used_event;
  if (!load_u16(memory, config.avail_ring + used_event_offset(config.size), &used_event)) return true;
  return vring_need_event(used_event, next_used, old);
}

void Virtqueue::reset() {
  config = VirtqueueConfig{};
  next_avail = next_used = 0;
  event_idx = false;
  signalled_valid_ = false;
}

}  // namespace vmrun::virtio
