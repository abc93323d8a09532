// One vsock stream between a guest port and a host unix socket, with virtio-vsock's
// credit-based flow control both ways (spec 5.10.6.3): the guest may have at most
// kBufferSize bytes in flight towards the host socket, and the device sends the
// guest no more than the guest's own buffer space allows.
#pragma once
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <vector>

namespace vmrun::virtio::vsock {

/** Host-side buffer per connection: what the device advertises as buf_alloc. */
constexpr uint32_t kBufferSize = 256 << 10;
/** The device tells the guest about freed space once this much was forwarded. */
constexpr uint32_t kCreditUpdateThreshold = kBufferSize / 4;

class Connection {
 public:
  enum class State {
    AwaitingConnectLine,  // a host client connected; its "CONNECT <port>\n" has not arrived
    Connecting,           // REQUEST sent to the guest; waiting for RESPONSE or RST
    Established,
  };

  Connection(int fd, State state) : fd(fd), state(state) {}
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd;
  State state;
  uint64_t tag = 0;  // its epoll tag
  uint32_t local_port = 0;  // the host side's port (the guest's dst_port)
  uint32_t peer_port = 0;   // the guest's port
  std::chrono::steady_clock::time_point deadline{};  // for the two waiting states

  // Guest -> host: bytes the host socket did not take yet, and how many were forwarded.
  std::vector<uint8_t> to_host;
  size_t to_host_sent = 0;
  uint32_t fwd_cnt = 0;
  uint32_t fwd_cnt_told = 0;  // the fwd_cnt the guest last heard
  size_t own_bytes = 0;       // bytes at the front of to_host that are not the guest's (the OK line)
  bool guest_done_sending = false;
  bool host_write_shut = false;
  bool close_when_flushed = false;  // the guest shut down both ways: RST once its bytes are out

  // Host -> guest.
  bool host_readable = false;  // edge-triggered: set on EPOLLIN, cleared at EAGAIN
  bool host_eof = false;
  bool eof_told = false;       // SHUTDOWN(SEND) queued for the guest
  uint32_t rx_cnt = 0;         // bytes sent to the guest
  uint32_t peer_buf_alloc = 0;
  uint32_t peer_fwd_cnt = 0;

  /** Bytes of guest buffer space the device may still fill. */
  uint32_t peer_credit() const {
    uint32_t in_flight = rx_cnt - peer_fwd_cnt;
    return in_flight >= peer_buf_alloc ? 0 : peer_buf_alloc - in_flight;
  }
  size_t pending_to_host() const { return to_host.size() - to_host_sent; }
  /**
   * Writes guest bytes to the host socket, buffering what it does not take. False if
   * the guest overran the credit it was given or the socket failed.
   */
  bool send_to_host(const std::vector<iovec>& data, uint64_t len);
  /** Writes buffered bytes; false if the socket failed. */
  bool flush_to_host();
  /** Buffers bytes for the host that are not guest payload (the "OK <port>\n" line). */
  void queue_for_host(const void* data, size_t len);
  /** True when the guest should hear about freed buffer space. */
  bool credit_update_due() const { return fwd_cnt - fwd_cnt_told >= kCreditUpdateThreshold; }
};

}  // namespace vmrun::virtio::vsock
