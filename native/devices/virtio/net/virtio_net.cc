#include "devices/virtio/net/virtio_net.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/state_codec.h"

namespace vmrun::virtio::net {

namespace {

constexpr uint32_t kStateVersion = 1;
enum StateTag : uint32_t { kTagMac = 1 };
/** Chains taken from the transmit queue per round, so receive work is never starved. */
constexpr int kTxBudget = 256;
constexpr size_t kMinFrameBytes = 14;  // an Ethernet header

void drain_eventfd(int fd) {
  uint64_t v;
  while (read(fd, &v, sizeof v) < 0 && errno == EINTR) {
  }
}

void signal_eventfd(int fd) {
  uint64_t one = 1;
  while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

}  // namespace

VirtioNet::VirtioNet(const NetworkConfig& config) : config_(config) {
  network_ = std::make_unique<UserNetwork>(config_, [this](const uint8_t* f, size_t n) { queue_frame_for_guest(f, n); });
  kick_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (kick_fd_ < 0 || stop_fd_ < 0) {
    int err = errno;
    if (kick_fd_ >= 0) close(kick_fd_);
    if (stop_fd_ >= 0) close(stop_fd_);
    throw VmrunError(ErrorCode::Host, errno_message("virtio-net eventfd", err));
  }
}

VirtioNet::~VirtioNet() {
  if (thread_.joinable()) {
    signal_eventfd(stop_fd_);
    thread_.join();
  }
  network_.reset();  // closes every back-end socket (published ports included) before the fds below
  close(kick_fd_);
  close(stop_fd_);
}

void VirtioNet::read_config(uint32_t offset, uint8_t* data, uint32_t size) {
  uint8_t space[12] = {};
  std::memcpy(space, config_.mac.data(), 6);
  uint16_t status = kStatusLinkUp;
  std::memcpy(space + 6, &status, 2);
  uint16_t mtu = kLinkMtu;
  std::memcpy(space + 10, &mtu, 2);
  for (uint32_t i = 0; i < size; i++) data[i] = offset + i < sizeof space ? space[offset + i] : 0;
}

void VirtioNet::attach(VirtioLink* link) {
  link_ = link;
  thread_ = std::thread([this] { run(); });
}

void VirtioNet::activate(uint64_t driver_features) {
  rx_mode_.data_valid = (driver_features & kFeatureGuestCsum) != 0;
  rx_mode_.mergeable = (driver_features & kFeatureMrgRxbuf) != 0;
  // Spec 5.1.6.2: with VIRTIO_NET_F_MTU the driver sends nothing larger than the MTU;
  // without it, nothing larger than Ethernet's, and larger frames are malformed.
  tx_max_frame_ = ((driver_features & kFeatureMtu) ? kLinkMtu : kDefaultMtu) + kLinkHeaderBytes;
  kick();
}
void VirtioNet::notify(uint16_t) { kick(); }
void VirtioNet::kick() { signal_eventfd(kick_fd_); }
// Nothing tied to the queues lives here: frames waiting for the guest are simply delivered
// once the driver is live again (the stack resends what the bounded queue dropped).
void VirtioNet::reset() {}

void VirtioNet::run() {
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({stop_fd_, POLLIN, 0});
    fds.push_back({kick_fd_, POLLIN, 0});
    for (const auto& e : notify_events_) fds.push_back({e->event_fd(), POLLIN, 0});
    const size_t first_network_fd = fds.size();
    int timeout = -1;
    network_->fill_poll(fds, &timeout);
    int n = poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) n = -1;
    if (fds[0].revents) return;
    for (size_t i = 1; i < first_network_fd; i++)
      if (fds[i].revents) drain_eventfd(fds[i].fd);
    serve_tx();
    network_->dispatch(fds, first_network_fd, n < 0);
    flush_rx();
    counters_.policy_dropped.store(network_->dropped_by_policy(), std::memory_order_relaxed);
  }
}

void VirtioNet::serve_tx() {
  // Copy the frames out under the transport's lock, hand them to the stack after it:
  // the stack may answer at once (ARP), and an answer needs the lock again.
  bool more = false;
  tx_batch_.clear();
  link_->with_queues([&](VirtioQueues& q) {
    bool used = false;
    for (int budget = kTxBudget; budget > 0; budget--) {
      DescriptorChain chain;
      Virtqueue::Pop r = q.pop(kTxQueue, &chain);
      if (r != Virtqueue::Pop::Chain) break;
      uint64_t len = chain.readable_length;
      if (len < kNetHeaderBytes + kMinFrameBytes || len > kNetHeaderBytes + tx_max_frame_) {
        counters_.tx_malformed.fetch_add(1, std::memory_order_relaxed);
      } else {
        std::vector<uint8_t> frame(len - kNetHeaderBytes);
        chain.read(kNetHeaderBytes, frame.data(), frame.size());
        tx_batch_.push_back(std::move(frame));
      }
      q.push_used(kTxQueue, chain.head, 0);
      used = true;
      if (budget == 1) more = true;
    }
    // Signalled by flush_rx() later in this round, together with the replies the stack
    // gives to these frames (ACKs): one interrupt for both queues, not two.
    if (used) tx_unsignalled_ = true;
  });
  for (const auto& f : tx_batch_) {
    counters_.tx_frames.fetch_add(1, std::memory_order_relaxed);
    network_->from_guest(f.data(), f.size());
  }
  if (more) kick();  // come back after the back end had its turn
}

void VirtioNet::queue_frame_for_guest(const uint8_t* frame, size_t len) {
  if (len > kMaxFrameBytes || pending_rx_.size() >= kMaxPendingRx || pending_rx_bytes_ + len > kMaxPendingRxBytes) {
    counters_.rx_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  pending_rx_.emplace_back(frame, frame + len);
  pending_rx_bytes_ += len;
}

void VirtioNet::flush_rx() {
  if (pending_rx_.empty() && !tx_unsignalled_) return;
  link_->with_queues([&](VirtioQueues& q) {
    bool used = tx_unsignalled_;
    while (!pending_rx_.empty()) {
      const auto& frame = pending_rx_.front();
      RxOutcome r = rx_placer_.deliver(q, kRxQueue, frame.data(), frame.size(), rx_mode_);
      // No buffer yet: the guest's notify kicks us. Stopped: the device waits for a reset.
      if (r == RxOutcome::NoBuffers || r == RxOutcome::Stopped) break;
      if (r == RxOutcome::Delivered) counters_.rx_frames.fetch_add(1, std::memory_order_relaxed);
      else counters_.rx_dropped.fetch_add(1, std::memory_order_relaxed);  // buffers too small for it: the frame goes
      used = true;
      pending_rx_bytes_ -= frame.size();
      pending_rx_.pop_front();
    }
    if (used) q.signal_used();
  });
  tx_unsignalled_ = false;  // signalled, or the device stopped (nothing left to tell the driver)
}

// The device's own state is its MAC only: its configuration comes from the snapshot's
// metadata on restore (a clone draws a new MAC, may publish other ports), and frames
// in flight are not kept (TCP resends; docs/networking.md).
StateBlob VirtioNet::save() {
  StateWriter w(kStateVersion);
  w.record(kTagMac, config_.mac.data(), config_.mac.size());
  return w.take();
}

void VirtioNet::restore(const StateBlob& state) {
  StateReader r(state, "virtio-net state", kStateVersion);
  size_t len;
  r.expect(kTagMac, &len);
  if (len != 6 || !r.at_end()) throw VmrunError(ErrorCode::Snapshot, "virtio-net state: malformed MAC record");
}

}  // namespace vmrun::virtio::net
