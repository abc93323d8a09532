// Small RAII + ioctl helpers shared by the KVM backend files.
#pragma once
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "common/error.h"

namespace vmrun::kvm {

/** An owned file descriptor. */
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

/** ioctl that retries on EINTR and throws VmrunError(Host) naming the request on failure. */
template <typename Arg>
int checked_ioctl(int fd, unsigned long request, Arg arg, const char* name) {
  for (;;) {
    int r = ::ioctl(fd, request, arg);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    throw VmrunError(ErrorCode::Host, errno_message(std::string("KVM ") + name + " failed", errno));
  }
}

}  // namespace vmrun::kvm
