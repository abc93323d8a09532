// A split virtqueue as the device side sees it (virtio 1.2, 2.7): the driver-programmed
// size and ring addresses, the device's position in the available and used rings,
// and a descriptor-chain walker. The guest is hostile: every ring address, index,
// descriptor address, length, flag and chain length is checked against guest RAM and
// the queue size before it is used, and a violation is reported, never acted on.
#pragma once
#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

#include "memory/guest_memory.h"

namespace vmrun::virtio {

/** One guest buffer of a chain, already checked to lie inside guest RAM. */
struct BufferSegment {
  uint8_t* host;
  uint32_t length;
};

/**
 * A popped descriptor chain: its head index (returned in the used ring) and its
 * device-readable then device-writable buffers, in chain order.
 */
class DescriptorChain {
 public:
  uint16_t head = 0;
  std::vector<BufferSegment> readable, writable;
  uint64_t readable_length = 0, writable_length = 0;

  /** Copies up to `len` readable bytes from `offset`; returns how many were copied. */
  size_t read(uint64_t offset, void* dst, size_t len) const;
  /** Copies up to `len` bytes into the writable part at `offset`; returns how many fit. */
  size_t write(uint64_t offset, const void* src, size_t len) const;
  /** The readable (or writable) bytes from `offset` on, at most `max`, as iovecs for readv/writev. */
  std::vector<iovec> readable_iovecs(uint64_t offset, uint64_t max) const;
  std::vector<iovec> writable_iovecs(uint64_t offset, uint64_t max) const;
};

/** One element for the used ring: a chain's head and how many bytes went into its writable part. */
struct UsedBuffer {
  uint16_t head;
  uint32_t written;
};

/** What the driver programmed through the transport. */
struct VirtqueueConfig {
  uint16_t size = 0;
  bool ready = false;
  uint64_t desc_table = 0;
  uint64_t avail_ring = 0;  // "driver area"
  uint64_t used_ring = 0;   // "device area"
};

/**
 * vring_need_event (spec 2.7.7.2, 2.7.10.1): whether moving a ring index from
 * `old_idx` to `new_idx` passed `event_idx`, i.e. event_idx is in [old_idx, new_idx)
 * modulo 2^16. Both indexes wrap at 65536, hence the unsigned 16-bit differences.
 */
constexpr bool vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

class Virtqueue {
 public:
  explicit Virtqueue(uint16_t max_size) : max_size_(max_size) {}

  uint16_t max_size() const { return max_size_; }
  VirtqueueConfig config;
  /** The device's next index into the available ring, and the used ring's index. */
  uint16_t next_avail = 0;
  uint16_t next_used = 0;
  /**
   * VIRTIO_F_EVENT_IDX was negotiated: pop() asks for a notification (avail_event)
   * only when it finds the ring empty, and take_used_signal() honours used_event.
   * Without it every batch of used buffers interrupts and every buffer is notified.
   */
  bool event_idx = false;

  /** Why the programmed size or ring addresses cannot be used ("" if they can). */
  std::string check_layout(const GuestMemory& memory) const;

  enum class Pop { Empty, Chain, Broken };
  /**
   * Takes the next available chain. Broken (with `why`) for anything outside the
   * rules: the device must then stop using the queue until the driver resets it.
   * A queue that is not ready is always Empty.
   */
  Pop pop(const GuestMemory& memory, DescriptorChain* chain, std::string* why);
  /** Gives the chain pop() just returned back to the available ring (the device had nothing to put in it). */
  void unpop() { next_avail--; }
  /** Puts a chain back in the used ring with `written` bytes written; false if the ring is not RAM. */
  bool push_used(const GuestMemory& memory, uint16_t head, uint32_t written);
  /**
   * Puts `count` chains in the used ring in order and publishes them with one update
   * of the used index, so the driver sees all of them or none: what a frame merged
   * over several receive buffers needs (spec 5.1.6.4). False if the ring is not RAM.
   */
  bool push_used(const GuestMemory& memory, const UsedBuffer* buffers, size_t count);
  /**
   * Whether the driver wants an interrupt for the buffers pushed since the last call
   * (spec 2.7.7.2): always without event_idx; with it, only if the used index passed
   * the driver's used_event since the last interrupt decision. Call once per batch.
   */
  bool take_used_signal(const GuestMemory& memory);
  /** The queue became ready (or was restored): the next batch always interrupts. */
  void forget_signalled() { signalled_valid_ = false; }
  /** Back to the state after a device reset. */
  void reset();

 private:
  bool arm_notification(const GuestMemory& memory, uint16_t* avail_idx);

  uint16_t max_size_;
  // The used index at the last interrupt decision (vhost's signalled_used); not in
  // snapshots: after a restore the first batch interrupts, which is always allowed.
  uint16_t signalled_used_ = 0;
  bool signalled_valid_ = false;
};

}  // namespace vmrun::virtio
