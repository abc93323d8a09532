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

/** What the driver programmed through the transport. */
struct VirtqueueConfig {
  uint16_t size = 0;
  bool ready = false;
  uint64_t desc_table = 0;
  uint64_t avail_ring = 0;  // "driver area"
  uint64_t used_ring = 0;   // "device area"
};

class Virtqueue {
 public:
  explicit Virtqueue(uint16_t max_size) : max_size_(max_size) {}

  uint16_t max_size() const { return max_size_; }
  VirtqueueConfig config;
  /** The device's next index into the available ring, and the used ring's index. */
  uint16_t next_avail = 0;
  uint16_t next_used = 0;

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
  /** Back to the state after a device reset. */
  void reset();

 private:
  uint16_t max_size_;
};

}  // namespace vmrun::virtio
