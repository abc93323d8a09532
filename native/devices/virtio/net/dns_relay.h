// Relays the guest's DNS queries (UDP to the guest-visible nameserver, port 53) to a
// resolver the caller names on the host, any address and port: what lets a test point
// the guest at its own resolver on 127.0.0.x, which slirp (fixed to the host's
// resolv.conf, port 53) cannot. Replies are matched to queries by DNS id and turned
// into frames from the nameserver address.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "devices/virtio/net/ipv4_frame.h"

namespace vmrun {

class DnsRelay {
 public:
  using FrameSink = std::function<void(const uint8_t* frame, size_t len)>;
  /** `resolver_ip` in network byte order; throws VmrunError if no socket can be opened. */
  DnsRelay(uint32_t nameserver_ip, uint32_t resolver_ip, uint16_t resolver_port);
  ~DnsRelay();
  DnsRelay(const DnsRelay&) = delete;
  DnsRelay& operator=(const DnsRelay&) = delete;

  /** The host socket replies arrive on (poll it for input). */
  int fd() const { return fd_; }
  /** True if `d` is a DNS query for the relay (then it was forwarded, or dropped if malformed). */
  bool take_query(const UdpDatagram& d);
  /** Reads every waiting reply and hands each to the guest as a frame. */
  void read_replies(const FrameSink& to_guest);

 private:
  struct Pending {
    uint16_t id = 0;
    bool used = false;
    MacAddress guest_mac{};
    uint32_t guest_ip = 0;
    uint16_t guest_port = 0;
  };
  static constexpr size_t kMaxPending = 64;  // queries in flight; the oldest slot is reused

  uint32_t nameserver_ip_;
  int fd_ = -1;
  std::vector<Pending> pending_ = std::vector<Pending>(kMaxPending);
  size_t next_slot_ = 0;
};

}  // namespace vmrun
