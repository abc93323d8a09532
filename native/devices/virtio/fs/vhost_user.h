// The front-end side of the vhost-user protocol (QEMU's docs/interop/vhost-user.rst):
// the messages vmrun sends a back end that serves a device's queues in its own
// process (virtiofsd), their byte encoding, and a connection that sends them with
// their file descriptors and reads the replies with a time bound. Only what a
// virtio-fs front end needs: no dirty logging, no protocol features.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vmrun::virtio::fs::vhost_user {

enum class Request : uint32_t {
  GetFeatures = 1,
  SetFeatures = 2,
  SetOwner = 3,
  SetMemTable = 5,
  SetVringNum = 8,
  SetVringAddr = 9,
  SetVringBase = 10,
  GetVringBase = 11,
  SetVringKick = 12,
  SetVringCall = 13,
};

/** Header flags: protocol version 1 in bits 0-1; bit 2 marks a reply. */
constexpr uint32_t kVersion = 1;
constexpr uint32_t kFlagReply = 1u << 2;
constexpr size_t kHeaderSize = 12;
/** The most memory regions one SET_MEM_TABLE carries (VHOST_MEMORY_BASELINE_NREGIONS). */
constexpr size_t kMaxMemoryRegions = 8;
/** The largest reply payload vmrun accepts (a u64 or a vring state). */
constexpr size_t kMaxReplyPayload = 8;
/** The back end's feature bit for protocol features (vmrun never acknowledges it). */
constexpr uint64_t kFeatureProtocolFeatures = 1ULL << 30;

/** One guest RAM region: where the guest sees it, where vmrun maps it, where it starts in the fd. */
struct MemoryRegion {
  uint64_t guest_address;
  uint64_t size;
  uint64_t user_address;
  uint64_t mmap_offset;
};
static_assert(sizeof(MemoryRegion) == 32, "wire layout");

/** SET_VRING_ADDR: the rings as addresses in vmrun's own mapping of guest RAM. */
struct VringAddress {
  uint32_t index;
  uint32_t flags;
  uint64_t descriptors;
  uint64_t used;
  uint64_t available;
  uint64_t log;
};
static_assert(sizeof(VringAddress) == 40, "wire layout");

/** A message ready to send: its bytes (header + payload) and the fds that travel with it. */
struct Message {
  std::vector<uint8_t> bytes;
  std::vector<int> fds;
};

Message encode_empty(Request request);
Message encode_u64(Request request, uint64_t value);
/** SET_MEM_TABLE: every region is mapped from `fd` (one fd per region on the wire). */
Message encode_mem_table(const std::vector<MemoryRegion>& regions, int fd);
Message encode_vring_state(Request request, uint32_t index, uint32_t num);
Message encode_vring_address(const VringAddress& address);
/** SET_VRING_KICK / SET_VRING_CALL: the queue index in bits 0-7 and the eventfd alongside. */
Message encode_vring_fd(Request request, uint32_t index, int fd);

/**
 * Checks a reply's header against the request it answers and returns its payload
 * size; "" in `why` on success. A reply is untrusted bytes like any other.
 */
bool check_reply_header(const uint8_t* header, Request expected, uint32_t* payload_size, std::string* why);

/** A connected vhost-user socket (owned). Calls are made from one thread at a time. */
class Connection {
 public:
  Connection(int fd, int timeout_ms) : fd_(fd), timeout_ms_(timeout_ms) {}
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }
  /** Sends one message; throws VmrunError(Host) if the back end is gone. */
  void send(const Message& message);
  /** Sends a request that has a u64 reply (GET_FEATURES) and returns it. */
  uint64_t request_u64(Request request);
  /** Sends GET_VRING_BASE for `index` (which stops that ring) and returns the ring's next index. */
  uint32_t get_vring_base(uint32_t index);

 private:
  std::vector<uint8_t> read_reply(Request expected);
  void read_exact(uint8_t* data, size_t len);
  int fd_;
  int timeout_ms_;
};

}  // namespace vmrun::virtio::fs::vhost_user
