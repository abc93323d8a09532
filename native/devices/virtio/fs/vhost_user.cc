#include "devices/virtio/fs/vhost_user.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace vmrun::virtio::fs::vhost_user {

namespace {

Message with_payload(Request request, const void* payload, uint32_t size) {
  Message m;
  m.bytes.resize(kHeaderSize + size);
  const uint32_t header[3] = {static_cast<uint32_t>(request), kVersion, size};
  std::memcpy(m.bytes.data(), header, kHeaderSize);
  if (size) std::memcpy(m.bytes.data() + kHeaderSize, payload, size);
  return m;
}

std::string request_name(Request r) { return "vhost-user request " + std::to_string(static_cast<uint32_t>(r)); }

}  // namespace

Message encode_empty(Request request) { return with_payload(request, nullptr, 0); }

Message encode_u64(Request request, uint64_t value) { return with_payload(request, &value, sizeof value); }

Message encode_mem_table(const std::vector<MemoryRegion>& regions, int fd) {
  if (regions.empty() || regions.size() > kMaxMemoryRegions) throw VmrunError(ErrorCode::Internal, "vhost-user: 1 to 8 memory regions");
  // u32 region count, u32 padding, then the regions (only as many as there are).
  std::vector<uint8_t> payload(8 + regions.size() * sizeof(MemoryRegion), 0);
  const uint32_t count = static_cast<uint32_t>(regions.size());
  std::memcpy(payload.data(), &count, 4);
  std::memcpy(payload.data() + 8, regions.data(), regions.size() * sizeof(MemoryRegion));
  Message m = with_payload(Request::SetMemTable, payload.data(), static_cast<uint32_t>(payload.size()));
  m.fds.assign(regions.size(), fd);
  return m;
}

Message encode_vring_state(Request request, uint32_t index, uint32_t num) {
  const uint32_t state[2] = {index, num};
  return with_payload(request, state, sizeof state);
}

Message encode_vring_address(const VringAddress& address) { return with_payload(Request::SetVringAddr, &address, sizeof address); }

Message encode_vring_fd(Request request, uint32_t index, int fd) {
  Message m = encode_u64(request, index & 0xFF);
  m.fds.push_back(fd);
  return m;
}

bool check_reply_header(const uint8_t* header, Request expected, uint32_t* payload_size, std::string* why) {
  uint32_t h[3];
  std::memcpy(h, header, kHeaderSize);
  if (h[0] != static_cast<uint32_t>(expected)) {
    *why = "the reply is for request " + std::to_string(h[0]) + ", not " + std::to_string(static_cast<uint32_t>(expected));
    return false;
  }
  if ((h[1] & 3) != kVersion || !(h[1] & kFlagReply)) {
    *why = "the reply has flags " + std::to_string(h[1]) + " (version 1 and the reply bit expected)";
    return false;
  }
  if (h[2] > kMaxReplyPayload) {
    *why = "the reply payload of " + std::to_string(h[2]) + " bytes is too large";
    return false;
  }
  *payload_size = h[2];
  why->clear();
  return true;
}

Connection::~Connection() {
  if (fd_ >= 0) close(fd_);
}

void Connection::send(const Message& message) {
  iovec iov{const_cast<uint8_t*>(message.bytes.data()), message.bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxMemoryRegions)] = {};
  if (!message.fds.empty()) {
    const size_t bytes = sizeof(int) * message.fds.size();
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(bytes);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(bytes);
    std::memcpy(CMSG_DATA(c), message.fds.data(), bytes);
  }
  ssize_t n;
  do n = sendmsg(fd_, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) throw VmrunError(ErrorCode::Host, errno_message("vhost-user back end: send", errno));
  // A unix stream socket takes a small message whole or not at all.
  if (static_cast<size_t>(n) != message.bytes.size()) throw VmrunError(ErrorCode::Host, "vhost-user back end: short send");
}

void Connection::read_exact(uint8_t* data, size_t len) {
  size_t got = 0;
  while (got < len) {
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms_);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) throw VmrunError(ErrorCode::Host, "vhost-user back end did not answer within " + std::to_string(timeout_ms_ / 1000) + " s");
    if (r < 0) throw VmrunError(ErrorCode::Host, errno_message("vhost-user back end: poll", errno));
    ssize_t n = recv(fd_, data + got, len - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw VmrunError(ErrorCode::Host, errno_message("vhost-user back end: receive", errno));
    if (n == 0) throw VmrunError(ErrorCode::Host, "the vhost-user back end closed its socket (it exited)");
    got += static_cast<size_t>(n);
  }
}

std::vector<uint8_t> Connection::read_reply(Request expected) {
  uint8_t header[kHeaderSize];
  read_exact(header, sizeof header);
  uint32_t size = 0;
  std::string why;
  if (!check_reply_header(header, expected, &size, &why)) throw VmrunError(ErrorCode::Host, "vhost-user back end: " + why);
  std::vector<uint8_t> payload(size);
  read_exact(payload.data(), size);
  return payload;
}

uint64_t Connection::request_u64(Request request) {
  send(encode_empty(request));
  auto payload = read_reply(request);
  if (payload.size() != 8) throw VmrunError(ErrorCode::Host, request_name(request) + ": the reply is not a u64");
  uint64_t v;
  std::memcpy(&v, payload.data(), 8);
  return v;
}

uint32_t Connection::get_vring_base(uint32_t index) {
  send(encode_vring_state(Request::GetVringBase, index, 0));
  auto payload = read_reply(Request::GetVringBase);
  if (payload.size() != 8) throw VmrunError(ErrorCode::Host, "GET_VRING_BASE: the reply is not a vring state");
  uint32_t state[2];
  std::memcpy(state, payload.data(), 8);
  if (state[0] != index) throw VmrunError(ErrorCode::Host, "GET_VRING_BASE: the reply is for another ring");
  return state[1];
}

}  // namespace vmrun::virtio::fs::vhost_user
