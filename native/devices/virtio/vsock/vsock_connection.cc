#include "devices/virtio/vsock/vsock_connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace vmrun::virtio::vsock {

Connection::~Connection() {
  if (fd >= 0) ::close(fd);
}

bool Connection::send_to_host(const std::vector<iovec>& data, uint64_t len) {
  if (pending_to_host() - own_bytes + len > kBufferSize) return false;  // beyond the credit the guest was given
  uint64_t written = 0;
  if (pending_to_host() == 0 && !data.empty()) {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(data.data());
    msg.msg_iovlen = data.size();
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    if (n > 0) written = static_cast<uint64_t>(n);
  }
  fwd_cnt += static_cast<uint32_t>(written);
  if (written == len) return true;
  // Keep the rest, compacting what was already sent.
  if (to_host_sent > 0) {
    to_host.erase(to_host.begin(), to_host.begin() + static_cast<ptrdiff_t>(to_host_sent));
    to_host_sent = 0;
  }
  uint64_t skip = written;
  for (const auto& v : data) {
    const auto* p = static_cast<const uint8_t*>(v.iov_base);
    if (skip >= v.iov_len) {
      skip -= v.iov_len;
      continue;
    }
    to_host.insert(to_host.end(), p + skip, p + v.iov_len);
    skip = 0;
  }
  return true;
}

void Connection::queue_for_host(const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  to_host.insert(to_host.end(), p, p + len);
  own_bytes += len;
}

bool Connection::flush_to_host() {
  while (pending_to_host() > 0) {
    ssize_t n = ::send(fd, to_host.data() + to_host_sent, pending_to_host(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    size_t sent = static_cast<size_t>(n), ours = std::min(sent, own_bytes);
    own_bytes -= ours;
    fwd_cnt += static_cast<uint32_t>(sent - ours);
    to_host_sent += sent;
  }
  to_host.clear();
  to_host_sent = 0;
  return true;
}

}  // namespace vmrun::virtio::vsock
