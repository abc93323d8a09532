#include "devices/virtio/vsock/unix_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace vmrun::virtio::vsock {

namespace {

sockaddr_un address_of(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), std::min(path.size(), sizeof a.sun_path - 1));
  return a;
}

int new_socket() { return ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

/** True if a socket file is at `path` but nothing accepts on it any more. */
bool is_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  int fd = new_socket();
  if (fd < 0) return false;
  sockaddr_un a = address_of(path);
  bool stale = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno == ECONNREFUSED;
  ::close(fd);
  return stale;
}

}  // namespace

int listen_unix(const std::string& path) {
  if (path.empty() || path.size() > kMaxUnixPath) throw VmrunError(ErrorCode::Usage, "vsock socket path " + path + " is empty or too long for a unix socket");
  if (is_stale_socket(path)) ::unlink(path.c_str());
  int fd = new_socket();
  if (fd < 0) throw VmrunError(ErrorCode::Host, errno_message("vsock socket " + path, errno));
  sockaddr_un a = address_of(path);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EADDRINUSE) throw VmrunError(ErrorCode::Usage, "vsock socket path " + path + " is already in use");
    throw VmrunError(err == ENOENT ? ErrorCode::NotFound : ErrorCode::Host, errno_message("cannot create the vsock socket " + path, err));
  }
  if (::listen(fd, 128) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    throw VmrunError(ErrorCode::Host, errno_message("cannot listen on the vsock socket " + path, err));
  }
  return fd;
}

int connect_unix(const std::string& path) {
  if (path.size() > kMaxUnixPath) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd = new_socket();
  if (fd < 0) return -1;
  sockaddr_un a = address_of(path);
  // A unix stream connect completes at once or fails (EAGAIN: the listener's backlog is full).
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

}  // namespace vmrun::virtio::vsock
