// virtio-net (virtio 1.2, 5.1) on the virtio-mmio transport, with the user-mode
// network (user_network.h) as its back end. One receive and one transmit queue,
// served on the device's own thread, which polls the back end's sockets, its timers
// and the queues' notifications (KVM ioeventfds: a kick costs the guest no exit to
// user space); no frame ever crosses into JS. Features: MAC (the host picks one per
// VM), STATUS (link up), MTU (16384, network_config.h), EVENT_IDX (the driver kicks and takes interrupts only when
// the other side asks, what makes throughput under emulation) and GUEST_CSUM (received
// frames come from the host's TCP/IP stack with valid checksums: the guest need not
// check them again) and MRG_RXBUF (the guest posts page-sized receive buffers and a
// frame may span several; rx_frames.h places them). Every chain the guest hands over is walked by the transport's
// checked walker; a frame with a bad length is dropped and counted.
#pragma once
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "devices/virtio/net/network_config.h"
#include "devices/virtio/net/rx_frames.h"
#include "devices/virtio/net/user_network.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/virtio_spec.h"

namespace vmrun::virtio::net {

constexpr uint32_t kDeviceType = 1;
constexpr uint16_t kQueueSize = 256;
constexpr uint16_t kRxQueue = 0, kTxQueue = 1;
/** An Ethernet header with room for a VLAN tag: the largest frame is the MTU plus this. */
constexpr uint32_t kLinkHeaderBytes = 18;
/** Largest frame either way: the link's MTU (network_config.h) plus the link header. */
constexpr uint32_t kMaxFrameBytes = kLinkMtu + kLinkHeaderBytes;
/** Frames from the back end waiting for guest receive buffers, and their bytes; more are dropped (TCP resends). */
constexpr size_t kMaxPendingRx = 1024;
constexpr size_t kMaxPendingRxBytes = 4 << 20;

constexpr uint64_t kFeatureGuestCsum = 1ULL << 1;
constexpr uint64_t kFeatureMtu = 1ULL << 3;
constexpr uint64_t kFeatureMac = 1ULL << 5;
constexpr uint64_t kFeatureMrgRxbuf = 1ULL << 15;
constexpr uint64_t kFeatureStatus = 1ULL << 16;
constexpr uint16_t kStatusLinkUp = 1;

/** Counters, for tests and stats. */
struct NetCounters {
  std::atomic<uint64_t> tx_frames{0}, rx_frames{0};
  std::atomic<uint64_t> tx_malformed{0};  // chains too short for a header or longer than a frame
  std::atomic<uint64_t> rx_dropped{0};    // no buffer, buffer too small, or queue full
  std::atomic<uint64_t> policy_dropped{0};
};

class VirtioNet : public VirtioDevice {
 public:
  /** Starts the back end (binds the published ports; throws VmrunError naming a port in use). */
  explicit VirtioNet(const NetworkConfig& config);
  ~VirtioNet() override;

  std::string name() const override { return "virtio-net"; }
  uint32_t device_type() const override { return kDeviceType; }
  uint64_t features() const override { return kFeatureGuestCsum | kFeatureMtu | kFeatureMac | kFeatureMrgRxbuf | kFeatureStatus | kFeatureRingEventIdx; }
  uint16_t queue_count() const override { return 2; }
  uint16_t queue_max_size(uint16_t) const override { return kQueueSize; }
  uint32_t config_size() const override { return 12; }  // mac[6], status, max_virtqueue_pairs (no MQ: unused), mtu
  void read_config(uint32_t offset, uint8_t* data, uint32_t size) override;
  void attach(VirtioLink* link) override;
  void activate(uint64_t driver_features) override;
  void notify(uint16_t index) override;
  bool takes_notify_events() const override { return true; }
  void use_notify_events(std::vector<std::unique_ptr<NotifyEvent>> events) override { notify_events_ = std::move(events); }
  void reset() override;
  StateBlob save() override;
  void restore(const StateBlob& state) override;

  const NetworkConfig& config() const { return config_; }
  const NetCounters& counters() const { return counters_; }

 private:
  void run();
  void kick();
  void serve_tx();
  /** Delivers waiting frames and signals this round's used buffers of both queues at once. */
  void flush_rx();
  void queue_frame_for_guest(const uint8_t* frame, size_t len);

  NetworkConfig config_;
  std::unique_ptr<UserNetwork> network_;
  VirtioLink* link_ = nullptr;
  int kick_fd_ = -1;
  int stop_fd_ = -1;
  std::vector<std::unique_ptr<NotifyEvent>> notify_events_;  // set before the thread starts
  RxMode rx_mode_;  // from the negotiated features (GUEST_CSUM, MRG_RXBUF); under the transport's lock
  /** The largest frame the guest may send: the link's MTU if its driver took VIRTIO_NET_F_MTU, else 1500 (+ header). Same lock. */
  uint32_t tx_max_frame_ = kDefaultMtu + kLinkHeaderBytes;
  std::thread thread_;
  NetCounters counters_;

  // Owned by the device thread.
  std::deque<std::vector<uint8_t>> pending_rx_;
  size_t pending_rx_bytes_ = 0;
  RxPlacer rx_placer_;
  std::vector<std::vector<uint8_t>> tx_batch_;
  bool tx_unsignalled_ = false;  // transmit buffers used this round, not yet signalled
};

}  // namespace vmrun::virtio::net
