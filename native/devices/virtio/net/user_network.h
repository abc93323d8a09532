// The user-mode network back end: libslirp linked into the addon (why slirp and not
// passt: docs/networking.md). No root, no helper process to outlive the VM, ports bound
// synchronously so a port in use is an error at start. Not thread-safe: one thread
// (the net device's) makes every call, the poll loop included.
#pragma once
#include <poll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "devices/virtio/net/dns_relay.h"
#include "devices/virtio/net/network_config.h"

struct Slirp;

namespace vmrun {

class UserNetwork {
 public:
  using FrameSink = std::function<void(const uint8_t* frame, size_t len)>;
  /** Starts the stack and binds every published port; throws VmrunError (Usage) naming a port in use. */
  UserNetwork(const NetworkConfig& config, FrameSink to_guest);
  ~UserNetwork();
  UserNetwork(const UserNetwork&) = delete;
  UserNetwork& operator=(const UserNetwork&) = delete;

  /** A frame the guest sent (without the virtio header); the mode's policy applies first. */
  void from_guest(const uint8_t* frame, size_t len);
  /** Appends the descriptors to poll and lowers `*timeout_ms` to the next timer. */
  void fill_poll(std::vector<pollfd>& fds, int* timeout_ms);
  /** After poll(): the entries from `first` on are the ones fill_poll() added. Fires due timers. */
  void dispatch(const std::vector<pollfd>& fds, size_t first, bool poll_failed);

  /** Frames dropped by the mode's policy (counted for tests and stats). */
  uint64_t dropped_by_policy() const { return dropped_by_policy_; }

 private:
  friend struct UserNetworkCallbacks;  // slirp's C callbacks
  struct Timer;
  static int64_t now_ms();
  void fire_due_timers();

  NetworkConfig config_;
  GuestAddresses addresses_;
  FrameSink to_guest_;
  std::unique_ptr<DnsRelay> dns_;
  ::Slirp* slirp_ = nullptr;
  std::vector<std::unique_ptr<Timer>> timers_;
  std::vector<pollfd>* filling_ = nullptr;  // valid during fill_poll()
  const std::vector<pollfd>* polled_ = nullptr;  // valid during dispatch()
  uint64_t dropped_by_policy_ = 0;
};

}  // namespace vmrun
