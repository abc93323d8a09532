// Placing the back end's frames in the guest's receive buffers (virtio 1.2, 5.1.6.3
// and 5.1.6.4), apart from the back end so the native unit tests can drive it on a
// real transport. Each frame gets the 12-byte virtio_net_hdr_v1 in front. Without
// VIRTIO_NET_F_MRG_RXBUF a frame must fit one chain; with it, a frame is spread over
// as many chains as it needs, the header's num_buffers says how many, and all of them
// reach the used ring with one index update. Every chain comes from the transport's
// checked walker; a guest's bad choice of buffer sizes costs it the frame, never the
// host anything.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "devices/virtio/virtio_device.h"

namespace vmrun::virtio::net {

/** virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers. */
constexpr uint32_t kNetHeaderBytes = 12;
constexpr uint32_t kNumBuffersOffset = 10;
/** Larger frames are dropped before any buffer is taken (used lengths are 32-bit; the device's own limit is far lower). */
constexpr size_t kMaxRxFrameBytes = 1 << 20;
/** virtio_net_hdr flags: the packet's checksum was validated (spec 5.1.6.4). */
constexpr uint8_t kHeaderDataValid = 2;

/** What the driver negotiated that changes how frames are placed. */
struct RxMode {
  bool mergeable = false;   // VIRTIO_NET_F_MRG_RXBUF
  bool data_valid = false;  // VIRTIO_NET_F_GUEST_CSUM: frames are marked DATA_VALID
};

enum class RxOutcome {
  Delivered,  // in the used ring, published
  Dropped,    // the offered buffers cannot hold it: the chains taken went back used with 0 bytes
  NoBuffers,  // not enough buffers yet: nothing was taken (the frame waits for the guest's notify)
  Stopped,    // the queue broke on a bad chain (the device needs a reset) or is not live
};

class RxPlacer {
 public:
  /** Delivers one Ethernet frame to queue `queue`; call under the transport's lock (VirtioLink::with_queues). */
  RxOutcome deliver(VirtioQueues& q, uint16_t queue, const uint8_t* frame, size_t len, RxMode mode);

 private:
  // Reused from frame to frame: no allocation per frame once they have grown.
  std::vector<DescriptorChain> chains_;
  std::vector<UsedBuffer> used_;
};

}  // namespace vmrun::virtio::net
