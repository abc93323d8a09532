// virtio-vsock (virtio 1.2, 5.10) with the host side on unix sockets, as Firecracker's
// hybrid vsock: the VM listens on `socket_path`; a host client connects, writes
// "CONNECT <port>\n", gets "OK <host port>\n" and then a byte stream to the guest's
// listener on that port (the socket is closed if the guest refuses). A guest
// connection to CID 2 port P is a connection to the unix socket `<socket_path>_<P>`.
// All of it is served on one device thread with epoll, never per byte in JS.
#pragma once
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "devices/virtio/virtio_device.h"
#include "devices/virtio/vsock/unix_socket.h"
#include "devices/virtio/vsock/vsock_connection.h"
#include "devices/virtio/vsock/vsock_packet.h"

namespace vmrun::virtio::vsock {

/** Guest CIDs a VM may have: 0-2 are reserved, 0xFFFFFFFF is VMADDR_CID_ANY. */
constexpr uint64_t kMinGuestCid = 3;
constexpr uint64_t kMaxGuestCid = 0xFFFF'FFFE;
/** The listening path leaves room for "_<port>" (up to 11 bytes) within a unix socket address. */
constexpr size_t kMaxSocketPath = kMaxUnixPath - 11;
/** Live connections per VM; more host clients are closed, more guest requests reset. */
constexpr size_t kMaxConnections = 1024;
constexpr uint16_t kQueueSize = 256;

/** What the host asks for: the guest's CID and where the VM's socket lives ("" = no host socket). */
struct VsockConfig {
  uint64_t guest_cid = 0;
  std::string socket_path;
};

/** Checks a configuration; throws VmrunError(Usage) naming the bad field. */
void validate_vsock_config(const VsockConfig& config);

class VsockDevice : public VirtioDevice {
 public:
  explicit VsockDevice(VsockConfig config);
  ~VsockDevice() override;

  std::string name() const override { return "virtio-vsock"; }
  uint32_t device_type() const override { return kDeviceType; }
  uint64_t features() const override { return 0; }
  uint16_t queue_count() const override { return 3; }
  uint16_t queue_max_size(uint16_t) const override { return kQueueSize; }
  uint32_t config_size() const override { return 8; }
  void read_config(uint32_t offset, uint8_t* data, uint32_t size) override;
  void attach(VirtioLink* link) override;
  void activate(uint64_t driver_features) override;
  void notify(uint16_t index) override;
  void reset() override;
  StateBlob save() override;
  void restore(const StateBlob& state) override;

 private:
  using ConnectionKey = std::pair<uint32_t, uint32_t>;  // (host port, guest port)

  void run();
  void kick();
  void accept_clients();
  void on_socket_event(uint64_t tag, uint32_t events);
  void read_connect_line(Connection& c);
  void release_held_connections();
  void expire_deadlines();
  int next_timeout_ms() const;
  void drop_all_connections(bool log);

  // Queue work, under the transport's lock.
  void serve(VirtioQueues& q);
  bool serve_tx(VirtioQueues& q);
  bool serve_rx(VirtioQueues& q);
  bool serve_event(VirtioQueues& q);
  void on_guest_packet(const PacketHeader& h, const DescriptorChain& chain);
  void on_guest_request(const PacketHeader& h);
  enum class Fill { NoBuffer, Sent, Nothing };
  Fill fill_rx_with_data(VirtioQueues& q, const ConnectionKey& key, Connection& c);
  bool send_control(VirtioQueues& q, bool* used);
  void after_host_write(const ConnectionKey& key, Connection& c);
  Connection* find(const ConnectionKey& key);

  // Packets to the guest.
  PacketHeader host_header(uint32_t host_port, uint32_t guest_port, uint16_t op, uint32_t flags, uint32_t fwd_cnt) const;
  PacketHeader header_for(const Connection& c, uint16_t op, uint32_t flags = 0) const;
  PacketHeader reply_to(const PacketHeader& h, uint16_t op) const;
  void queue_control(const PacketHeader& h);
  /** RST to the guest, close the host side; `why` (null for an orderly end) goes to stderr. */
  void reset_connection(const ConnectionKey& key, const char* why);
  /** One stderr line for a connection that ended abnormally (null: the whole device), bounded per device. */
  void log_end(const Connection* c, const std::string& why);
  void close_connection(const ConnectionKey& key);  // close the host side only
  uint32_t allocate_host_port();

  VsockConfig config_;
  VirtioLink* link_ = nullptr;
  int epoll_fd_ = -1;
  int kick_fd_ = -1;
  int listen_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> reset_generation_{0};
  std::atomic<bool> transport_reset_pending_{false};
  /**
   * After a restore: the guest has not yet handled the transport reset (it re-reads its
   * CID from config space when it does, then resets its connected sockets). Host
   * connections wait until then, or until reset_ack_deadline_ns_ (steady clock), so the
   * guest's reset cannot drop a connection made just before it without telling the host.
   */
  std::atomic<bool> awaiting_reset_ack_{false};
  std::atomic<int64_t> reset_ack_deadline_ns_{0};
  std::atomic<bool> rx_notified_{true};

  // Owned by the device thread.
  uint64_t seen_generation_ = 0;
  uint64_t next_tag_ = kFirstConnectionTag;
  std::map<uint64_t, std::unique_ptr<Connection>> by_tag_;  // every host socket, by its epoll tag
  std::map<ConnectionKey, uint64_t> by_key_;                 // connections the guest knows of
  std::deque<PacketHeader> to_guest_;                        // control packets waiting for rx buffers
  std::vector<uint64_t> held_;                               // host connections waiting for the reset's end
  uint32_t next_host_port_ = 1U << 30;
  uint32_t ends_logged_ = 0;

  /** A guest can end connections at will: its abnormal ends are logged this many times, then counted no more. */
  static constexpr uint32_t kMaxEndsLogged = 32;

  static constexpr uint64_t kKickTag = 0, kListenerTag = 1, kFirstConnectionTag = 16;
};

}  // namespace vmrun::virtio::vsock
