#include "common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace vmrun {

std::vector<uint8_t> read_file(const std::string& path, const char* what, uint64_t max_size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    throw VmrunError(err == ENOENT ? ErrorCode::NotFound : ErrorCode::Usage,
                     std::string(what) + " " + path + (err == ENOENT ? " does not exist" : ": " + std::string(std::strerror(err))));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw VmrunError(ErrorCode::Usage, std::string(what) + " " + path + ": not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    ::close(fd);
    throw VmrunError(ErrorCode::Usage, std::string(what) + " " + path + ": too large (" +
                                           std::to_string(st.st_size) + " bytes, limit " +
                                           std::to_string(max_size) + ")");
  }
  std::vector<uint8_t> data(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::read(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw VmrunError(ErrorCode::Usage, std::string(what) + " " + path + ": read failed");
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return data;
}

}  // namespace vmrun
