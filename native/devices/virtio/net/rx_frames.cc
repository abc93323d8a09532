#include "devices/virtio/net/rx_frames.h"

#include <algorithm>

namespace vmrun::virtio::net {

RxOutcome RxPlacer::deliver(VirtioQueues& q, uint16_t queue, const uint8_t* frame, size_t len, RxMode mode) {
  if (queue >= q.count()) return RxOutcome::Stopped;
  if (len > kMaxRxFrameBytes) return RxOutcome::Dropped;  // nothing taken: no buffer could be asked to hold it
  const uint64_t need = kNetHeaderBytes + static_cast<uint64_t>(len);
  // A frame can take at most every buffer the ring can hold at once; if those are
  // not enough, waiting for more would stall the queue for good.
  const uint16_t ring = q.queue(queue).config.size;
  size_t taken = 0;
  uint64_t capacity = 0;
  bool fits = true;
  while (capacity < need) {
    if (taken > 0 && (!mode.mergeable || taken >= ring)) {
      fits = false;
      break;
    }
    if (taken == chains_.size()) chains_.emplace_back();
    Virtqueue::Pop r = q.pop(queue, &chains_[taken]);
    if (r == Virtqueue::Pop::Broken) return RxOutcome::Stopped;  // the transport failed the device; the chains taken die with it
    if (r == Virtqueue::Pop::Empty) {
      // Not enough yet. Give back what was taken (in reverse: each unpop undoes the
      // latest pop); pop() has asked for a notification when the driver adds more.
      for (size_t i = 0; i < taken; i++) q.unpop(queue);
      return RxOutcome::NoBuffers;
    }
    const uint64_t room = chains_[taken].writable_length;
    taken++;
    // Spec 5.1.6.3.1: every receive buffer holds at least a header. One that does not
    // (a read-only or tiny chain) is a broken promise: the frame is lost, not the device.
    if (room < kNetHeaderBytes) {
      fits = false;
      break;
    }
    capacity += room;
  }

  used_.clear();
  if (!fits) {
    for (size_t i = 0; i < taken; i++) used_.push_back({chains_[i].head, 0});
    q.push_used(queue, used_.data(), used_.size());
    return RxOutcome::Dropped;
  }

  uint8_t header[kNetHeaderBytes] = {};
  if (mode.data_valid) header[0] = kHeaderDataValid;
  const uint16_t buffers = static_cast<uint16_t>(taken);  // taken <= ring <= 32768
  header[kNumBuffersOffset] = static_cast<uint8_t>(buffers);
  header[kNumBuffersOffset + 1] = static_cast<uint8_t>(buffers >> 8);

  size_t done = 0;  // frame bytes placed so far
  for (size_t i = 0; i < taken; i++) {
    const DescriptorChain& c = chains_[i];
    uint64_t offset = 0;
    if (i == 0) offset = c.write(0, header, sizeof header);
    const size_t n = std::min<uint64_t>(len - done, c.writable_length - offset);
    c.write(offset, frame + done, n);
    done += n;
    used_.push_back({c.head, static_cast<uint32_t>(offset + n)});
  }
  q.push_used(queue, used_.data(), used_.size());
  return RxOutcome::Delivered;
}

}  // namespace vmrun::virtio::net
