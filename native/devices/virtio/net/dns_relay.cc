#include "devices/virtio/net/dns_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace vmrun {

namespace {
constexpr uint16_t kDnsPort = 53;
constexpr size_t kDnsHeaderBytes = 12;
constexpr size_t kMaxDnsMessage = 1500;  // a reply that does not fit a frame is dropped; the resolver retries over TCP
// The nameserver's MAC as slirp answers ARP for it: 52:55 followed by the IPv4 address.
MacAddress nameserver_mac(uint32_t ip) {
  MacAddress m{0x52, 0x55, 0, 0, 0, 0};
  std::memcpy(m.data() + 2, &ip, 4);
  return m;
}
}  // namespace

DnsRelay::DnsRelay(uint32_t nameserver_ip, uint32_t resolver_ip, uint16_t resolver_port) : nameserver_ip_(nameserver_ip) {
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw VmrunError(ErrorCode::Host, errno_message("DNS relay socket", errno));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = resolver_ip;
  to.sin_port = htons(resolver_port);
  // Connected: only the resolver's replies are accepted on this socket.
  if (connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    int err = errno;
    close(fd_);
    throw VmrunError(ErrorCode::Usage, errno_message("DNS resolver address", err));
  }
}

DnsRelay::~DnsRelay() {
  if (fd_ >= 0) close(fd_);
}

bool DnsRelay::take_query(const UdpDatagram& d) {
  if (d.dst_ip != nameserver_ip_ || d.dst_port != kDnsPort) return false;
  if (d.payload_len < kDnsHeaderBytes || d.payload_len > kMaxDnsMessage) return true;  // not DNS: dropped
  Pending& slot = pending_[next_slot_];
  next_slot_ = (next_slot_ + 1) % kMaxPending;
  slot.used = true;
  slot.id = static_cast<uint16_t>(d.payload[0] << 8 | d.payload[1]);
  slot.guest_mac = d.src_mac;
  slot.guest_ip = d.src_ip;
  slot.guest_port = d.src_port;
  // Best effort like any UDP: a full socket buffer or a refused port loses the query, the guest retries.
  (void)send(fd_, d.payload, d.payload_len, MSG_DONTWAIT);
  return true;
}

void DnsRelay::read_replies(const FrameSink& to_guest) {
  uint8_t buf[kMaxDnsMessage];
  for (;;) {
    ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN, or ECONNREFUSED from an earlier query: nothing (more) to deliver
    }
    if (static_cast<size_t>(n) < kDnsHeaderBytes || static_cast<size_t>(n) > sizeof buf) continue;
    uint16_t id = static_cast<uint16_t>(buf[0] << 8 | buf[1]);
    for (Pending& p : pending_) {
      if (!p.used || p.id != id) continue;
      p.used = false;
      auto frame = build_udp_frame(p.guest_mac, nameserver_mac(nameserver_ip_), nameserver_ip_, kDnsPort, p.guest_ip,
                                   p.guest_port, buf, static_cast<size_t>(n));
      to_guest(frame.data(), frame.size());
      break;
    }
  }
}

}  // namespace vmrun
