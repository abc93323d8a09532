#include "devices/virtio/vsock/vsock_device.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/error.h"
#include "common/state_codec.h"

namespace vmrun::virtio::vsock {

namespace {

constexpr uint32_t kStateVersion = 1;
enum StateTag : uint32_t { kTagVsock = 1 };

/** The device's own state in a snapshot (its queues are the transport's). */
struct VsockState {
  uint64_t guest_cid;
  uint32_t transport_reset_pending;
  uint32_t reserved;
};
static_assert(sizeof(VsockState) == 16, "no padding: snapshots hold these bytes");

/** Linux's largest vsock packet payload (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
constexpr uint32_t kMaxPacketPayload = 64 << 10;
/** Control packets queued for the guest; tx is not served beyond this until rx drains. */
constexpr size_t kMaxQueuedControl = 2048;
/** "CONNECT 4294967295\n" is 19 bytes; a longer line is not one. */
constexpr size_t kMaxConnectLine = 32;
/** How long a host client may take to send its line, and the guest to answer a REQUEST. */
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
/** How long host connections wait, after a restore, for the guest to handle the transport reset. */
constexpr auto kResetAckBound = std::chrono::seconds(2);

bool parse_connect_line(const char* line, size_t len, uint32_t* port) {
  static const char kPrefix[] = "CONNECT ";
  const size_t prefix = sizeof kPrefix - 1;
  if (len <= prefix || std::memcmp(line, kPrefix, prefix) != 0) return false;
  uint64_t v = 0;
  for (size_t i = prefix; i < len; i++) {
    if (line[i] < '0' || line[i] > '9' || i - prefix >= 10) return false;
    v = v * 10 + static_cast<uint64_t>(line[i] - '0');
  }
  if (v > 0xFFFF'FFFFULL) return false;
  *port = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

void validate_vsock_config(const VsockConfig& c) {
  if (c.guest_cid < kMinGuestCid || c.guest_cid > kMaxGuestCid)
    throw VmrunError(ErrorCode::Usage, "vsock cid " + std::to_string(c.guest_cid) + " is out of range (" + std::to_string(kMinGuestCid) + "-" + std::to_string(kMaxGuestCid) + ")");
  if (c.socket_path.size() > kMaxSocketPath)
    throw VmrunError(ErrorCode::Usage, "vsock socket path " + c.socket_path + " is " + std::to_string(c.socket_path.size()) + " bytes; at most " + std::to_string(kMaxSocketPath) + " fit in a unix socket address with a port suffix");
  if (c.socket_path.find('\0') != std::string::npos) throw VmrunError(ErrorCode::Usage, "vsock socket path contains a NUL byte");
}

VsockDevice::VsockDevice(VsockConfig config) : config_(std::move(config)) {
  validate_vsock_config(config_);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  kick_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || kick_fd_ < 0) {
    int err = errno;
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (kick_fd_ >= 0) ::close(kick_fd_);
    throw VmrunError(ErrorCode::Host, errno_message("vsock device set-up", err));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kKickTag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, kick_fd_, &ev);
  if (!config_.socket_path.empty()) {
    try {
      listen_fd_ = listen_unix(config_.socket_path);
    } catch (...) {
      ::close(epoll_fd_);
      ::close(kick_fd_);
      throw;
    }
    ev.data.u64 = kListenerTag;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  }
}

VsockDevice::~VsockDevice() {
  stopping_ = true;
  kick();
  if (thread_.joinable()) thread_.join();
  drop_all_connections(false);  // the VM's end: its connections end with it
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(config_.socket_path.c_str());
  }
  ::close(kick_fd_);
  ::close(epoll_fd_);
}

void VsockDevice::read_config(uint32_t offset, uint8_t* data, uint32_t size) {
  // struct virtio_vsock_config { le64 guest_cid; }
  uint64_t cid = config_.guest_cid;
  std::memcpy(data, reinterpret_cast<const uint8_t*>(&cid) + offset, size);
  // A read after the reset event went out is the guest handling it: host connections may go on.
  if (awaiting_reset_ack_.load() && !transport_reset_pending_.load()) {
    awaiting_reset_ack_ = false;
    kick();
  }
}

void VsockDevice::attach(VirtioLink* link) {
  link_ = link;
  thread_ = std::thread([this] { run(); });
}

void VsockDevice::kick() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(kick_fd_, &one, sizeof one);
}

void VsockDevice::activate(uint64_t) { kick(); }
void VsockDevice::notify(uint16_t) { kick(); }

void VsockDevice::reset() {
  reset_generation_++;
  kick();
}

void VsockDevice::run() {
  epoll_event events[64];
  while (!stopping_) {
    int n = ::epoll_wait(epoll_fd_, events, 64, next_timeout_ms());
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; i++) {
      uint64_t tag = events[i].data.u64;
      if (tag == kKickTag) {
        uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(kick_fd_, &v, sizeof v);
      } else if (tag == kListenerTag) {
        accept_clients();
      } else {
        on_socket_event(tag, events[i].events);
      }
    }
    if (stopping_) break;
    release_held_connections();
    if (reset_generation_.load() != seen_generation_) {
      seen_generation_ = reset_generation_.load();
      drop_all_connections(true);
    }
    expire_deadlines();
    link_->with_queues([this](VirtioQueues& q) { serve(q); });
  }
}

void VsockDevice::release_held_connections() {
  if (held_.empty()) return;
  if (awaiting_reset_ack_.load()) {
    const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    if (now < reset_ack_deadline_ns_.load()) return;
    awaiting_reset_ack_ = false;  // a guest that never re-reads its CID: go on after the bound
  }
  std::vector<uint64_t> held;
  held.swap(held_);
  for (uint64_t tag : held) {
    auto it = by_tag_.find(tag);
    if (it != by_tag_.end() && it->second->state == Connection::State::AwaitingConnectLine) read_connect_line(*it->second);
  }
}

int VsockDevice::next_timeout_ms() const {
  if (!held_.empty()) return 20;
  for (const auto& [tag, c] : by_tag_)
    if (c->deadline != std::chrono::steady_clock::time_point{}) return 250;
  return -1;
}

void VsockDevice::expire_deadlines() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<uint64_t> expired;
  for (const auto& [tag, c] : by_tag_)
    if (c->deadline != std::chrono::steady_clock::time_point{} && c->deadline < now) expired.push_back(tag);
  for (uint64_t tag : expired) {
    Connection& c = *by_tag_.at(tag);
    if (c.state == Connection::State::Connecting) reset_connection({c.local_port, c.peer_port}, "the guest did not answer the connection request in time");
    else by_tag_.erase(tag);
  }
}

void VsockDevice::accept_clients() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: all taken; anything else: try again on the next event
    if (by_tag_.size() >= kMaxConnections) {
      ::close(fd);
      continue;
    }
    auto c = std::make_unique<Connection>(fd, Connection::State::AwaitingConnectLine);
    c->tag = next_tag_++;
    c->deadline = std::chrono::steady_clock::now() + kHandshakeTimeout;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = c->tag;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) continue;  // c closes fd
    uint64_t tag = c->tag;
    by_tag_[tag] = std::move(c);
    read_connect_line(*by_tag_[tag]);  // the line may already be there
  }
}

void VsockDevice::read_connect_line(Connection& c) {
  char line[kMaxConnectLine];
  ssize_t n = ::recv(c.fd, line, sizeof line, MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  const void* nl = n > 0 ? std::memchr(line, '\n', static_cast<size_t>(n)) : nullptr;
  if (!nl) {
    if (n > 0 && static_cast<size_t>(n) < sizeof line) return;  // not all there yet
    by_tag_.erase(c.tag);  // gone, failed, or no line within the bound
    return;
  }
  if (awaiting_reset_ack_.load()) {
    // The line stays unread until the guest has handled the reset.
    if (std::find(held_.begin(), held_.end(), c.tag) == held_.end()) held_.push_back(c.tag);
    return;
  }
  size_t len = static_cast<size_t>(static_cast<const char*>(nl) - line);
  // Consume exactly the line: bytes after it are the stream's first bytes.
  [[maybe_unused]] ssize_t taken = ::recv(c.fd, line, len + 1, 0);
  uint32_t port;
  if (!parse_connect_line(line, len, &port) || by_key_.size() >= kMaxConnections) {
    by_tag_.erase(c.tag);
    return;
  }
  c.local_port = allocate_host_port();
  c.peer_port = port;
  c.state = Connection::State::Connecting;
  c.deadline = std::chrono::steady_clock::now() + kHandshakeTimeout;
  by_key_[{c.local_port, c.peer_port}] = c.tag;
  queue_control(header_for(c, kOpRequest));
}

uint32_t VsockDevice::allocate_host_port() {
  for (;;) {
    uint32_t port = next_host_port_++;
    if (next_host_port_ == 0) next_host_port_ = 1U << 30;
    auto it = by_key_.lower_bound({port, 0});
    if (it == by_key_.end() || it->first.first != port) return port;
  }
}

Connection* VsockDevice::find(const ConnectionKey& key) {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : by_tag_.at(it->second).get();
}

void VsockDevice::on_socket_event(uint64_t tag, uint32_t events) {
  auto it = by_tag_.find(tag);
  if (it == by_tag_.end()) return;
  Connection& c = *it->second;
  if (c.state == Connection::State::AwaitingConnectLine) {
    if (events & EPOLLIN) read_connect_line(c);
    else if (events & (EPOLLERR | EPOLLHUP)) by_tag_.erase(tag);
    return;
  }
  const ConnectionKey key{c.local_port, c.peer_port};
  if (events & EPOLLERR) {
    reset_connection(key, "error on the host socket");
    return;
  }
  // Read until EAGAIN or EOF; a hang-up reads as EOF after the last bytes.
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) c.host_readable = true;
  if (events & EPOLLOUT) {
    if (!c.flush_to_host()) {
      reset_connection(key, "writing to the host socket failed");
      return;
    }
    after_host_write(key, c);
  }
}

void VsockDevice::after_host_write(const ConnectionKey& key, Connection& c) {
  if (c.pending_to_host() > 0) return;
  if (c.close_when_flushed) {
    reset_connection(key, nullptr);  // the orderly end both sides asked for
    return;
  }
  if (c.guest_done_sending && !c.host_write_shut) {
    ::shutdown(c.fd, SHUT_WR);
    c.host_write_shut = true;
  }
  if (c.credit_update_due()) queue_control(header_for(c, kOpCreditUpdate));
}

void VsockDevice::drop_all_connections(bool log) {
  // Only streams that were open: a driver's reset at boot meets host clients still
  // waiting for the guest to answer, which is how a client that dials early retries.
  size_t open = 0;
  for (const auto& [key, tag] : by_key_) open += by_tag_.at(tag)->state == Connection::State::Established ? 1 : 0;
  if (log && open > 0) log_end(nullptr, "the device was reset: " + std::to_string(open) + " open connection(s) closed");
  by_key_.clear();
  by_tag_.clear();  // closes every host socket
  to_guest_.clear();
}

PacketHeader VsockDevice::host_header(uint32_t host_port, uint32_t guest_port, uint16_t op, uint32_t flags, uint32_t fwd_cnt) const {
  PacketHeader h{};
  h.src_cid = kHostCid;
  h.dst_cid = config_.guest_cid;
  h.src_port = host_port;
  h.dst_port = guest_port;
  h.type = kTypeStream;
  h.op = op;
  h.flags = flags;
  h.buf_alloc = kBufferSize;
  h.fwd_cnt = fwd_cnt;
  return h;
}

PacketHeader VsockDevice::header_for(const Connection& c, uint16_t op, uint32_t flags) const {
  return host_header(c.local_port, c.peer_port, op, flags, c.fwd_cnt);
}

PacketHeader VsockDevice::reply_to(const PacketHeader& g, uint16_t op) const { return host_header(g.dst_port, g.src_port, op, 0, 0); }

void VsockDevice::queue_control(const PacketHeader& h) {
  // Bounded: tx is not served while this is full, so only a guest that stops taking rx
  // buffers gets here, and then nothing it is owed is lost that it could still read.
  if (to_guest_.size() < kMaxQueuedControl + kMaxConnections) to_guest_.push_back(h);
}

void VsockDevice::reset_connection(const ConnectionKey& key, const char* why) {
  if (Connection* c = find(key)) {
    if (why) log_end(c, why);
    queue_control(header_for(*c, kOpRst));
  }
  close_connection(key);
}

void VsockDevice::log_end(const Connection* c, const std::string& why) {
  if (ends_logged_ > kMaxEndsLogged) return;
  if (ends_logged_++ == kMaxEndsLogged) {
    std::fprintf(stderr, "vmrun: vsock: further abnormal connection ends are not logged\n");
    return;
  }
  if (c)
    std::fprintf(stderr, "vmrun: vsock: connection between host port %u and guest port %u ended: %s\n", c->local_port, c->peer_port, why.c_str());
  else
    std::fprintf(stderr, "vmrun: vsock: %s\n", why.c_str());
}

void VsockDevice::close_connection(const ConnectionKey& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  by_tag_.erase(it->second);
  by_key_.erase(it);
}

// ---- queue work (transport lock held) ----

void VsockDevice::serve(VirtioQueues& q) {
  if (reset_generation_.load() != seen_generation_) return;  // a reset raced in: drop first
  bool used = serve_event(q);
  used |= serve_tx(q);
  used |= serve_rx(q);
  if (used) q.signal_used();
}

bool VsockDevice::serve_event(VirtioQueues& q) {
  if (!transport_reset_pending_) return false;
  DescriptorChain chain;
  if (q.pop(kEventQueue, &chain) != Virtqueue::Pop::Chain) return false;
  // struct virtio_vsock_event { le32 id; }
  uint32_t id = kEventTransportReset;
  size_t written = chain.write(0, &id, sizeof id);
  q.push_used(kEventQueue, chain.head, static_cast<uint32_t>(written));
  transport_reset_pending_ = false;
  return true;
}

bool VsockDevice::serve_tx(VirtioQueues& q) {
  bool used = false;
  while (to_guest_.size() < kMaxQueuedControl) {
    DescriptorChain chain;
    if (q.pop(kTxQueue, &chain) != Virtqueue::Pop::Chain) break;
    PacketHeader h;
    // A packet shorter than its header is dropped; the chain itself was valid.
    if (chain.read(0, &h, sizeof h) == sizeof h) on_guest_packet(h, chain);
    q.push_used(kTxQueue, chain.head, 0);
    used = true;
  }
  return used;
}

void VsockDevice::on_guest_packet(const PacketHeader& h, const DescriptorChain& chain) {
  // Only the guest's own CID to the host's: anything else is spoofed or misrouted.
  if (h.src_cid != config_.guest_cid || h.dst_cid != kHostCid) return;
  const ConnectionKey key{uint32_t{h.dst_port}, uint32_t{h.src_port}};
  Connection* c = find(key);
  if (h.type != kTypeStream) {
    if (h.op != kOpRst) queue_control(reply_to(h, kOpRst));
    return;
  }
  if (c) {
    c->peer_buf_alloc = h.buf_alloc;
    c->peer_fwd_cnt = h.fwd_cnt;
  }
  switch (h.op) {
    case kOpRequest:
      if (c) reset_connection(key, "the guest asked again for a connection it already has");
      else on_guest_request(h);
      return;
    case kOpResponse: {
      if (!c || c->state != Connection::State::Connecting) {
        if (c) reset_connection(key, "the guest answered a request that was not pending");
        else queue_control(reply_to(h, kOpRst));
        return;
      }
      c->state = Connection::State::Established;
      c->deadline = {};
      const std::string ok = "OK " + std::to_string(c->local_port) + "\n";
      c->queue_for_host(ok.data(), ok.size());
      if (!c->flush_to_host()) reset_connection(key, "writing to the host socket failed");
      else c->host_readable = true;  // bytes the client sent behind its CONNECT line
      return;
    }
    case kOpRst:
      // An established stream the host had not finished: say so (the host only sees a close).
      if (c && c->state == Connection::State::Established && !c->host_eof && !c->close_when_flushed) log_end(c, "the guest reset it");
      close_connection(key);
      return;
    case kOpShutdown:
      if (!c) {
        queue_control(reply_to(h, kOpRst));
        return;
      }
      if (h.flags & kShutdownSend) c->guest_done_sending = true;
      // Both ways: the guest waits for our RST (as Linux's close() does) once its bytes are out.
      if ((h.flags & (kShutdownSend | kShutdownReceive)) == (kShutdownSend | kShutdownReceive) || (c->guest_done_sending && c->host_eof))
        c->close_when_flushed = true;
      after_host_write(key, *c);
      return;
    case kOpRw:
      if (!c || c->state != Connection::State::Established) {
        queue_control(reply_to(h, kOpRst));
        return;
      }
      if (const char* why = h.len > kMaxPacketPayload || h.len > chain.readable_length - sizeof h ? "a data packet longer than its buffer or the limit"
                            : c->guest_done_sending ? "data after the guest's shutdown"
                            : !c->send_to_host(chain.readable_iovecs(sizeof h, h.len), h.len) ? "data beyond the credit, or the host socket failed"
                            : nullptr) {
        reset_connection(key, why);
        return;
      }
      after_host_write(key, *c);
      return;
    case kOpCreditUpdate:
      return;  // the credit was taken from the header above
    case kOpCreditRequest:
      if (c) queue_control(header_for(*c, kOpCreditUpdate));
      else queue_control(reply_to(h, kOpRst));
      return;
    default:
      if (c) reset_connection(key, "an unknown operation");
      else queue_control(reply_to(h, kOpRst));
  }
}

void VsockDevice::on_guest_request(const PacketHeader& h) {
  int fd = -1;
  if (!config_.socket_path.empty() && by_tag_.size() < kMaxConnections)
    fd = connect_unix(config_.socket_path + "_" + std::to_string(h.dst_port));
  if (fd < 0) {
    queue_control(reply_to(h, kOpRst));  // nobody listens: connection refused
    return;
  }
  auto c = std::make_unique<Connection>(fd, Connection::State::Established);
  c->tag = next_tag_++;
  c->local_port = h.dst_port;
  c->peer_port = h.src_port;
  c->peer_buf_alloc = h.buf_alloc;
  c->peer_fwd_cnt = h.fwd_cnt;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = c->tag;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    queue_control(reply_to(h, kOpRst));
    return;
  }
  queue_control(header_for(*c, kOpResponse));
  by_key_[{c->local_port, c->peer_port}] = c->tag;
  by_tag_[c->tag] = std::move(c);
}

bool VsockDevice::send_control(VirtioQueues& q, bool* used) {
  while (!to_guest_.empty()) {
    DescriptorChain chain;
    if (q.pop(kRxQueue, &chain) != Virtqueue::Pop::Chain) return false;
    *used = true;
    PacketHeader h = to_guest_.front();
    if (chain.writable_length < sizeof h) {
      q.push_used(kRxQueue, chain.head, 0);  // too small for any packet: handed back empty
      continue;
    }
    // Credit as of now, not as of when the packet was queued.
    if (Connection* c = find({uint32_t{h.src_port}, uint32_t{h.dst_port}})) {
      h.fwd_cnt = c->fwd_cnt;
      c->fwd_cnt_told = c->fwd_cnt;
    }
    chain.write(0, &h, sizeof h);
    q.push_used(kRxQueue, chain.head, sizeof h);
    to_guest_.pop_front();
  }
  return true;
}

VsockDevice::Fill VsockDevice::fill_rx_with_data(VirtioQueues& q, const ConnectionKey& key, Connection& c) {
  DescriptorChain chain;
  if (q.pop(kRxQueue, &chain) != Virtqueue::Pop::Chain) return Fill::NoBuffer;
  if (chain.writable_length <= sizeof(PacketHeader)) {
    q.push_used(kRxQueue, chain.head, 0);
    return Fill::Sent;
  }
  uint64_t room = std::min<uint64_t>({chain.writable_length - sizeof(PacketHeader), c.peer_credit(), kMaxPacketPayload});
  std::vector<iovec> iov = chain.writable_iovecs(sizeof(PacketHeader), room);
  ssize_t n = ::readv(c.fd, iov.data(), static_cast<int>(iov.size()));
  if (n > 0) {
    PacketHeader h = header_for(c, kOpRw);
    h.len = static_cast<uint32_t>(n);
    c.fwd_cnt_told = c.fwd_cnt;
    chain.write(0, &h, sizeof h);
    q.push_used(kRxQueue, chain.head, static_cast<uint32_t>(sizeof h + static_cast<size_t>(n)));
    c.rx_cnt += static_cast<uint32_t>(n);
    return Fill::Sent;
  }
  q.unpop(kRxQueue);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    c.host_readable = false;
    return Fill::Nothing;
  }
  if (n < 0) {
    reset_connection(key, "reading the host socket failed");
    return Fill::Nothing;
  }
  // EOF: the host client will send no more.
  c.host_readable = false;
  c.host_eof = true;
  queue_control(header_for(c, kOpShutdown, kShutdownSend));
  if (c.guest_done_sending) {
    c.close_when_flushed = true;
    after_host_write(key, c);
  }
  return Fill::Nothing;
}

bool VsockDevice::serve_rx(VirtioQueues& q) {
  bool used = false;
  for (;;) {
    if (!send_control(q, &used)) return used;
    bool progress = false;
    std::vector<ConnectionKey> keys;
    for (const auto& [key, tag] : by_key_) keys.push_back(key);
    for (const auto& key : keys) {
      Connection* c = find(key);
      if (!c || c->state != Connection::State::Established || !c->host_readable || c->host_eof || c->peer_credit() == 0) continue;
      Fill f = fill_rx_with_data(q, key, *c);
      if (f == Fill::NoBuffer) return used;
      if (f == Fill::Sent) used = progress = true;
    }
    if (!progress && to_guest_.empty()) return used;
  }
}

StateBlob VsockDevice::save() {
  StateWriter w(kStateVersion);
  VsockState s{config_.guest_cid, transport_reset_pending_ ? 1U : 0U, 0};
  w.record(kTagVsock, s);
  return w.take();
}

void VsockDevice::restore(const StateBlob& state) {
  StateReader r(state, name() + " device state", kStateVersion);
  auto s = r.expect_obj<VsockState>(kTagVsock);
  if (!r.at_end()) throw VmrunError(ErrorCode::Snapshot, name() + " device state has trailing records");
  (void)s.guest_cid;  // the configured CID wins: the guest re-reads it on the transport reset
  // Host connections do not survive a snapshot: tell the guest its sockets are gone.
  transport_reset_pending_ = true;
  reset_ack_deadline_ns_ = (std::chrono::steady_clock::now() + kResetAckBound).time_since_epoch().count();
  awaiting_reset_ack_ = true;
  kick();
}

}  // namespace vmrun::virtio::vsock
