#include "devices/virtio/net/user_network.h"

#include <arpa/inet.h>
#include <slirp/libslirp.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

#include "common/error.h"
#include "devices/virtio/net/ipv4_frame.h"

namespace vmrun {

GuestAddresses default_guest_addresses() {
  GuestAddresses a;
  a.network = inet_addr("10.0.2.0");
  a.netmask = inet_addr("255.255.255.0");
  a.gateway = inet_addr("10.0.2.2");
  a.nameserver = inet_addr("10.0.2.3");
  a.guest = inet_addr("10.0.2.15");
  return a;
}

std::string describe_forward(const PortForward& f) {
  char ip[INET_ADDRSTRLEN];
  in_addr a{f.host_ip};
  inet_ntop(AF_INET, &a, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(f.host_port) + "->" + std::to_string(f.guest_port) + (f.udp ? "/udp" : "/tcp");
}

/** A slirp timer: slirp asks for one by id and re-arms it with absolute ms times. */
struct UserNetwork::Timer {
  SlirpTimerId id;
  void* cb_opaque;
  int64_t expire_ms = -1;  // -1: not armed
};

int64_t UserNetwork::now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

namespace {

UserNetwork* self(void* opaque) { return static_cast<UserNetwork*>(opaque); }

int slirp_events(short poll_events) {
  int e = 0;
  if (poll_events & POLLIN) e |= SLIRP_POLL_IN;
  if (poll_events & POLLOUT) e |= SLIRP_POLL_OUT;
  if (poll_events & POLLPRI) e |= SLIRP_POLL_PRI;
  if (poll_events & POLLERR) e |= SLIRP_POLL_ERR;
  if (poll_events & POLLHUP) e |= SLIRP_POLL_HUP;
  return e;
}

short poll_events(int slirp) {
  short e = 0;
  if (slirp & SLIRP_POLL_IN) e |= POLLIN;
  if (slirp & SLIRP_POLL_OUT) e |= POLLOUT;
  if (slirp & SLIRP_POLL_PRI) e |= POLLPRI;
  return e;
}

}  // namespace

// slirp's C callbacks; a friend of UserNetwork.
struct UserNetworkCallbacks {
  static ssize_t send_packet(const void* buf, size_t len, void* opaque) {
    self(opaque)->to_guest_(static_cast<const uint8_t*>(buf), len);
    return static_cast<ssize_t>(len);
  }
  static void guest_error(const char*, void*) {}
  static int64_t clock_get_ns(void*) { return UserNetwork::now_ms() * 1000000; }
  static void* timer_new_opaque(SlirpTimerId id, void* cb_opaque, void* opaque) {
    auto t = std::make_unique<UserNetwork::Timer>(UserNetwork::Timer{id, cb_opaque});
    auto* raw = t.get();
    self(opaque)->timers_.push_back(std::move(t));
    return raw;
  }
  static void timer_free(void* timer, void* opaque) {
    auto& v = self(opaque)->timers_;
    v.erase(std::remove_if(v.begin(), v.end(), [&](const auto& t) { return t.get() == timer; }), v.end());
  }
  static void timer_mod(void* timer, int64_t expire_ms, void*) { static_cast<UserNetwork::Timer*>(timer)->expire_ms = expire_ms; }
  static void register_poll_fd(int, void*) {}    // fill_poll() asks slirp for its descriptors on every round
  static void unregister_poll_fd(int, void*) {}
  static void notify(void*) {}
  static int add_poll(int fd, int events, void* opaque) {
    auto* fds = self(opaque)->filling_;
    fds->push_back(pollfd{fd, poll_events(events), 0});
    return static_cast<int>(fds->size() - 1);
  }
  static int get_revents(int idx, void* opaque) {
    auto* n = self(opaque);
    size_t i = static_cast<size_t>(idx);
    if (idx < 0 || i >= n->polled_->size()) return 0;
    return slirp_events((*n->polled_)[i].revents);
  }
};

UserNetwork::UserNetwork(const NetworkConfig& config, FrameSink to_guest)
    : config_(config), addresses_(default_guest_addresses()), to_guest_(std::move(to_guest)) {
  if (config_.dns_port != 0) dns_ = std::make_unique<DnsRelay>(addresses_.nameserver, config_.dns_ip, config_.dns_port);

  static const SlirpCb callbacks = [] {
    SlirpCb cb{};
    cb.send_packet = UserNetworkCallbacks::send_packet;
    cb.guest_error = UserNetworkCallbacks::guest_error;
    cb.clock_get_ns = UserNetworkCallbacks::clock_get_ns;
    cb.timer_free = UserNetworkCallbacks::timer_free;
    cb.timer_mod = UserNetworkCallbacks::timer_mod;
    cb.register_poll_fd = UserNetworkCallbacks::register_poll_fd;
    cb.unregister_poll_fd = UserNetworkCallbacks::unregister_poll_fd;
    cb.notify = UserNetworkCallbacks::notify;
    cb.timer_new_opaque = UserNetworkCallbacks::timer_new_opaque;
    return cb;
  }();
  SlirpConfig sc{};
  sc.version = 4;
  sc.in_enabled = true;
  sc.vnetwork.s_addr = addresses_.network;
  sc.vnetmask.s_addr = addresses_.netmask;
  sc.vhost.s_addr = addresses_.gateway;
  sc.vdhcp_start.s_addr = addresses_.guest;
  sc.vnameserver.s_addr = addresses_.nameserver;
  sc.in6_enabled = false;
  sc.disable_host_loopback = false;  // the gateway address is the host's 127.0.0.1: the point of host.vmrun.internal
  sc.enable_emu = false;
  sc.disable_dhcp = true;  // vmrun-init configures eth0 statically
  // The link's MTU both ways (network_config.h). TCP segments follow the MSS each side
  // announces, so a guest that kept 1500 still gets 1460-byte segments; only datagrams
  // from the outside larger than that would reach it unfragmented (and be dropped).
  sc.if_mtu = kLinkMtu;
  sc.if_mru = kLinkMtu;
  slirp_ = slirp_new(&sc, &callbacks, this);
  if (!slirp_) throw VmrunError(ErrorCode::Host, "the user-mode network (libslirp) could not start");

  for (const PortForward& f : config_.forwards) {
    in_addr host{f.host_ip}, guest{addresses_.guest};
    errno = 0;
    if (slirp_add_hostfwd(slirp_, f.udp ? 1 : 0, host, f.host_port, guest, f.guest_port) != 0) {
      int err = errno;
      slirp_cleanup(slirp_);
      slirp_ = nullptr;
      std::string why = err == EADDRINUSE ? "the host port is already in use"
                        : err == EADDRNOTAVAIL ? "the host address is not on this host"
                        : err == EACCES ? "permission denied for the host port"
                        : err ? std::strerror(err) : "the host port cannot be bound";
      throw VmrunError(ErrorCode::Usage, "cannot publish " + describe_forward(f) + ": " + why);
    }
  }
}

UserNetwork::~UserNetwork() {
  if (slirp_) slirp_cleanup(slirp_);  // closes every socket slirp opened, listeners included
}

void UserNetwork::from_guest(const uint8_t* frame, size_t len) {
  UdpDatagram udp;
  if (dns_ && parse_udp_datagram(frame, len, &udp) && dns_->take_query(udp)) return;
  if (config_.mode == NetworkMode::HostLoopback) {
    uint16_t type = ether_type(frame, len);
    uint32_t dst = 0;
    bool allowed = type == kEtherTypeArp || (ipv4_destination(frame, len, &dst) && dst == addresses_.gateway);
    if (!allowed) {
      dropped_by_policy_++;
      return;
    }
  }
  if (len > INT_MAX) return;
  slirp_input(slirp_, frame, static_cast<int>(len));
}

void UserNetwork::fill_poll(std::vector<pollfd>& fds, int* timeout_ms) {
  if (dns_) fds.push_back(pollfd{dns_->fd(), POLLIN, 0});
  uint32_t slirp_timeout = *timeout_ms < 0 ? UINT32_MAX : static_cast<uint32_t>(*timeout_ms);
  filling_ = &fds;
  slirp_pollfds_fill(slirp_, &slirp_timeout, UserNetworkCallbacks::add_poll, this);
  filling_ = nullptr;
  int64_t now = now_ms();
  int64_t next = slirp_timeout == UINT32_MAX ? -1 : static_cast<int64_t>(slirp_timeout);
  for (const auto& t : timers_) {
    if (t->expire_ms < 0) continue;
    int64_t in = std::max<int64_t>(0, t->expire_ms - now);
    if (next < 0 || in < next) next = in;
  }
  *timeout_ms = next < 0 ? -1 : static_cast<int>(std::min<int64_t>(next, INT_MAX));
}

void UserNetwork::dispatch(const std::vector<pollfd>& fds, size_t first, bool poll_failed) {
  if (dns_ && first < fds.size() && fds[first].revents) dns_->read_replies(to_guest_);
  polled_ = &fds;  // slirp's indexes are positions in `fds` (add_poll returned them)
  slirp_pollfds_poll(slirp_, poll_failed ? 1 : 0, UserNetworkCallbacks::get_revents, this);
  polled_ = nullptr;
  fire_due_timers();
}

void UserNetwork::fire_due_timers() {
  int64_t now = now_ms();
  // slirp may add, re-arm or free timers from the handler: collect the due ones first.
  std::vector<std::pair<SlirpTimerId, void*>> due;
  for (auto& t : timers_) {
    if (t->expire_ms >= 0 && t->expire_ms <= now) {
      t->expire_ms = -1;
      due.emplace_back(t->id, t->cb_opaque);
    }
  }
  for (auto& [id, opaque] : due) slirp_handle_timer(slirp_, id, opaque);
}

}  // namespace vmrun
