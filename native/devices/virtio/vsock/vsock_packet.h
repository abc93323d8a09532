// The virtio-vsock wire format (virtio 1.2, 5.10): the 44-byte little-endian packet
// header, its operations, the shutdown flags and the event the device sends.
#pragma once
#include <cstdint>

namespace vmrun::virtio::vsock {

/** Every packet on the rx and tx queues starts with this header (payload follows for RW). */
struct PacketHeader {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
} __attribute__((packed));
static_assert(sizeof(PacketHeader) == 44, "virtio_vsock_hdr is 44 bytes");

constexpr uint32_t kDeviceType = 19;
constexpr uint64_t kHostCid = 2;
constexpr uint16_t kTypeStream = 1;

enum Op : uint16_t {
  kOpInvalid = 0,
  kOpRequest = 1,
  kOpResponse = 2,
  kOpRst = 3,
  kOpShutdown = 4,
  kOpRw = 5,
  kOpCreditUpdate = 6,
  kOpCreditRequest = 7,
};

/** SHUTDOWN flags: the sender will receive no more / send no more. */
constexpr uint32_t kShutdownReceive = 1;
constexpr uint32_t kShutdownSend = 2;

/** The event queue's only event: the device lost every connection (snapshot restore). */
constexpr uint32_t kEventTransportReset = 0;

// Queues, in the order the spec numbers them.
constexpr uint16_t kRxQueue = 0;
constexpr uint16_t kTxQueue = 1;
constexpr uint16_t kEventQueue = 2;

}  // namespace vmrun::virtio::vsock
