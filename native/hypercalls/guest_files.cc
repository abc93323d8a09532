#include "hypercalls/guest_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <set>

#include "common/error.h"
#include "hypercalls/uhyve_abi.h"

namespace vmrun::uhyve {

namespace {

// Permission bits only: no setuid, setgid or sticky bit on a file a guest creates.
constexpr int kGuestModeBits = 0777;

std::string join(const std::vector<std::string>& parts, size_t from) {
  std::string out;
  for (size_t i = from; i < parts.size(); i++) {
    if (!out.empty()) out += '/';
    out += parts[i];
  }
  return out;
}

int openat2_beneath(int dir_fd, const std::string& relative, int flags, int mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? static_cast<uint64_t>(mode & kGuestModeBits) : 0;
  // BENEATH refuses "..", absolute paths and symlinks that would leave dir_fd.
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, dir_fd, relative.empty() ? "." : relative.c_str(), &how, sizeof how);
  return static_cast<int>(fd);
}

}  // namespace

std::vector<std::string> normalise_guest_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  return parts;
}

std::string canonical_guest_path(const std::string& path) { return "/" + join(normalise_guest_path(path), 0); }

std::vector<FileMapping> parse_file_mappings(const std::vector<std::string>& specs, const std::string& label) {
  std::vector<FileMapping> out;
  std::set<std::string> guests;
  for (const std::string& spec : specs) {
    auto fail = [&](ErrorCode code, const std::string& why) {
      throw VmrunError(code, label + " " + spec + ": " + why);
    };
    size_t colon = spec.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == spec.size()) fail(ErrorCode::Usage, "expected HOST_PATH:GUEST_PATH");
    std::string host = spec.substr(0, colon), guest = spec.substr(colon + 1);
    if (guest[0] != '/') fail(ErrorCode::Usage, "the guest path " + guest + " must be absolute");
    if (guest.find('\0') != std::string::npos || host.find('\0') != std::string::npos) fail(ErrorCode::Usage, "a path contains a NUL byte");
    if (("/" + guest + "/").find("/../") != std::string::npos) fail(ErrorCode::Usage, "the guest path " + guest + " must not contain '..'");
    char resolved[PATH_MAX];
    if (!realpath(host.c_str(), resolved)) {
      if (errno == ENOENT || errno == ENOTDIR) fail(ErrorCode::NotFound, "the host path " + host + " does not exist");
      fail(ErrorCode::Usage, errno_message("cannot resolve the host path " + host, errno));
    }
    struct stat st;
    if (stat(resolved, &st) != 0) fail(ErrorCode::Usage, errno_message("cannot stat the host path " + host, errno));
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) fail(ErrorCode::Usage, "the host path " + host + " is neither a regular file nor a directory");
    FileMapping m;
    m.host = resolved;
    m.guest = "/" + join(normalise_guest_path(guest), 0);
    m.is_directory = S_ISDIR(st.st_mode);
    if (!guests.insert(m.guest).second) fail(ErrorCode::Usage, "the guest path " + m.guest + " is mapped twice");
    out.push_back(std::move(m));
  }
  return out;
}

GuestFiles::GuestFiles(std::vector<FileMapping> mappings) : mappings_(std::move(mappings)) {
  for (const FileMapping& m : mappings_) {
    int fd = -1;
    if (m.is_directory) {
      fd = ::open(m.host.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) {
        for (int open_fd : mapping_dir_fds_)
          if (open_fd >= 0) ::close(open_fd);
        throw VmrunError(ErrorCode::Usage, errno_message("--file-mapping: cannot open the host directory " + m.host, errno));
      }
    }
    mapping_dir_fds_.push_back(fd);
  }
}

GuestFiles::~GuestFiles() {
  for (auto& [guest_fd, file] : fds_) ::close(file.fd);
  for (int fd : mapping_dir_fds_)
    if (fd >= 0) ::close(fd);
  if (temp_dir_fd_ >= 0) {
    // Remove everything in the private directory, whatever the guest left there.
    int list_fd = openat(temp_dir_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);  // O_PATH fds cannot be listed
    if (DIR* dir = list_fd >= 0 ? fdopendir(list_fd) : nullptr) {
      while (dirent* e = readdir(dir)) {
        std::string name = e->d_name;
        if (name != "." && name != "..") unlinkat(temp_dir_fd_, name.c_str(), 0);
      }
      closedir(dir);
    } else if (list_fd >= 0) {
      ::close(list_fd);
    }
    ::close(temp_dir_fd_);
    rmdir(temp_dir_.c_str());
  }
}

GuestFiles::Resolved GuestFiles::resolve(const std::vector<std::string>& parts) const {
  Resolved best;
  size_t best_length = 0;
  for (size_t i = 0; i < mappings_.size(); i++) {
    std::vector<std::string> mapped = normalise_guest_path(mappings_[i].guest);
    if (mapped.size() > parts.size() || !std::equal(mapped.begin(), mapped.end(), parts.begin())) continue;
    if (!mappings_[i].is_directory && mapped.size() != parts.size()) continue;
    if (best.found && mapped.size() < best_length) continue;
    best = Resolved{};
    best.found = true;
    best_length = mapped.size();
    if (mappings_[i].is_directory) {
      best.dir_fd = mapping_dir_fds_[i];
      best.relative = join(parts, mapped.size());
    } else {
      best.host_file = mappings_[i].host;
    }
  }
  return best;
}

int32_t GuestFiles::install(int fd, const std::string& guest_path, int32_t flags, bool temporary) {
  if (fds_.size() >= kMaxOpenFiles) {
    ::close(fd);
    return -EMFILE;
  }
  while (fds_.count(next_fd_) || next_fd_ < 3) next_fd_ = next_fd_ == INT32_MAX ? 3 : next_fd_ + 1;
  int32_t guest_fd = next_fd_++;
  fds_[guest_fd] = OpenFile{fd, temporary, guest_path, flags};
  return guest_fd;
}

int GuestFiles::host_fd(int32_t guest_fd) const {
  auto it = fds_.find(guest_fd);
  return it == fds_.end() ? -1 : it->second.fd;
}

uint64_t GuestFiles::temporary_bytes() const {
  // Each inode once: a file may be named and open several times.
  std::set<std::pair<dev_t, ino_t>> seen;
  uint64_t total = 0;
  auto count = [&](const struct stat& st) {
    if (seen.insert({st.st_dev, st.st_ino}).second) total += static_cast<uint64_t>(st.st_size);
  };
  struct stat st;
  for (const auto& [key, name] : temp_files_)
    if (fstatat(temp_dir_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) count(st);
  for (const auto& [guest_fd, file] : fds_)
    if (file.temporary && fstat(file.fd, &st) == 0) count(st);
  return total;
}

int64_t GuestFiles::temporary_write_allowance(int fd, uint64_t wanted) const {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  uint64_t size = static_cast<uint64_t>(st.st_size);
  int fl = fcntl(fd, F_GETFL);
  off_t at = (fl >= 0 && (fl & O_APPEND)) ? st.st_size : ::lseek(fd, 0, SEEK_CUR);
  if (at < 0) return -errno;
  uint64_t pos = static_cast<uint64_t>(at);
  if (pos >= kMaxTempFileBytes) return -EFBIG;
  uint64_t allowed = std::min(wanted, kMaxTempFileBytes - pos);
  // Growth beyond the file's current end counts against the total.
  if (pos + allowed > size) {
    uint64_t used = temporary_bytes();
    uint64_t room = used >= kMaxTempBytes ? 0 : kMaxTempBytes - used;
    uint64_t end_limit = size + room;
    if (pos >= end_limit) return -ENOSPC;
    allowed = std::min(allowed, end_limit - pos);
  }
  return static_cast<int64_t>(allowed);
}

int GuestFiles::ensure_temp_dir() {
  if (temp_dir_fd_ >= 0) return 0;
  const char* base = getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/vmrun-hermit-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) return -errno;
  temp_dir_ = buf.data();
  temp_dir_fd_ = ::open(temp_dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (temp_dir_fd_ < 0) {
    int err = errno;
    rmdir(temp_dir_.c_str());
    temp_dir_.clear();
    return -err;
  }
  return 0;
}

int32_t GuestFiles::create_temporary(const std::string& key, int32_t flags, int32_t mode) {
  if (int rc = ensure_temp_dir(); rc < 0) return rc;
  if (temp_files_.size() >= kMaxTempFiles) return -ENOSPC;
  // A fresh name the guest cannot choose or predict, created exclusively.
  std::string name = "file-" + std::to_string(++temp_counter_);
  int fd = openat(temp_dir_fd_, name.c_str(), flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & kGuestModeBits);
  if (fd < 0) return -errno;
  int32_t guest_fd = install(fd, key, flags, true);
  if (guest_fd < 0) {
    unlinkat(temp_dir_fd_, name.c_str(), 0);
    return guest_fd;
  }
  temp_files_[key] = name;
  return guest_fd;
}

int32_t GuestFiles::open(const std::string& guest_path, int32_t flags, int32_t mode) {
  flags &= kAllowedOpenFlags;
  // Linux refuses this pair too (see the kernel's 2023 O_DIRECTORY|O_CREAT change).
  if ((flags & (kOpenDirectory | kOpenCreat)) == (kOpenDirectory | kOpenCreat)) return -EINVAL;
  std::vector<std::string> parts = normalise_guest_path(guest_path);
  std::string key = "/" + join(parts, 0);
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = temp_files_.find(key); it != temp_files_.end()) {
    int fd = openat(temp_dir_fd_, it->second.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode & kGuestModeBits);
    return fd < 0 ? -errno : install(fd, key, flags, true);
  }
  Resolved r = resolve(parts);
  if (!r.found) return (flags & kOpenCreat) ? create_temporary(key, flags, mode) : -ENOENT;
  int fd = open_resolved(r, flags, mode);
  return fd < 0 ? -errno : install(fd, key, flags);
}

int GuestFiles::open_resolved(const Resolved& r, int32_t flags, int32_t mode) const {
  return r.dir_fd >= 0 ? openat2_beneath(r.dir_fd, r.relative, flags, mode)
                       : ::open(r.host_file.c_str(), flags | O_CLOEXEC, mode & kGuestModeBits);
}

std::string GuestFiles::host_path_of(const Resolved& r) const {
  if (r.dir_fd < 0) return r.host_file;
  for (size_t i = 0; i < mappings_.size(); i++)
    if (mapping_dir_fds_[i] == r.dir_fd) return r.relative.empty() ? mappings_[i].host : mappings_[i].host + "/" + r.relative;
  return r.relative;
}

int32_t GuestFiles::close(int32_t fd) {
  if (fd >= 0 && fd <= 2) return 0;  // the console is not the guest's to close
  std::lock_guard<std::mutex> lock(mu_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return -EBADF;
  int rc = ::close(it->second.fd);
  fds_.erase(it);
  return rc < 0 && errno != EINTR ? -errno : 0;
}

int64_t GuestFiles::read(int32_t fd, const std::vector<iovec>& into) {
  std::lock_guard<std::mutex> lock(mu_);
  int host = host_fd(fd);
  if (host < 0) return -EBADF;
  if (into.empty()) return 0;
  ssize_t n = readv(host, into.data(), static_cast<int>(std::min<size_t>(into.size(), IOV_MAX)));
  return n < 0 ? -errno : n;
}

int64_t GuestFiles::write(int32_t fd, const std::vector<iovec>& from) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return -EBADF;
  int host = it->second.fd;
  std::vector<iovec> io(from.begin(), from.begin() + static_cast<ptrdiff_t>(std::min<size_t>(from.size(), IOV_MAX)));
  if (io.empty()) return 0;
  if (it->second.temporary) {
    uint64_t wanted = 0;
    for (const iovec& v : io) wanted += v.iov_len;
    if (wanted == 0) return 0;
    int64_t allowed = temporary_write_allowance(host, wanted);
    if (allowed < 0) return allowed;
    // Trim the vector to the allowance (a short write, as at a file size limit).
    uint64_t left = static_cast<uint64_t>(allowed);
    size_t keep = 0;
    for (; keep < io.size() && left > 0; keep++) {
      io[keep].iov_len = std::min<uint64_t>(io[keep].iov_len, left);
      left -= io[keep].iov_len;
    }
    io.resize(keep);
  }
  ssize_t n = writev(host, io.data(), static_cast<int>(io.size()));
  return n < 0 ? -errno : n;
}

int64_t GuestFiles::lseek(int32_t fd, int64_t offset, int32_t whence) {
  if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) return -EINVAL;
  std::lock_guard<std::mutex> lock(mu_);
  int host = host_fd(fd);
  if (host < 0) return -EBADF;
  off_t r = ::lseek(host, offset, whence);
  return r < 0 ? -errno : r;
}

int32_t GuestFiles::unlink(const std::string& guest_path) {
  std::vector<std::string> parts = normalise_guest_path(guest_path);
  std::string key = "/" + join(parts, 0);
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = temp_files_.find(key); it != temp_files_.end()) {
    int rc = unlinkat(temp_dir_fd_, it->second.c_str(), 0);
    temp_files_.erase(it);
    return rc < 0 ? -errno : 0;
  }
  Resolved r = resolve(parts);
  if (!r.found) return -ENOENT;
  if (r.dir_fd < 0) return ::unlink(r.host_file.c_str()) < 0 ? -errno : 0;
  if (r.relative.empty()) return -EBUSY;  // the mapped directory itself
  size_t slash = r.relative.rfind('/');
  std::string parent = slash == std::string::npos ? "" : r.relative.substr(0, slash);
  std::string name = slash == std::string::npos ? r.relative : r.relative.substr(slash + 1);
  int parent_fd = openat2_beneath(r.dir_fd, parent, O_PATH | O_DIRECTORY, 0);
  if (parent_fd < 0) return -errno;
  int rc = unlinkat(parent_fd, name.c_str(), 0);
  int err = errno;
  ::close(parent_fd);
  return rc < 0 ? -err : 0;
}

std::vector<std::string> GuestFiles::mount_points() const {
  std::set<std::string> points;
  for (const FileMapping& m : mappings_) {
    if (m.is_directory) {
      points.insert(m.guest);
    } else {
      size_t slash = m.guest.rfind('/');
      points.insert(slash == 0 ? "/" : m.guest.substr(0, slash));
    }
  }
  return {points.begin(), points.end()};
}

std::string GuestFiles::temp_dir() const {
  std::lock_guard<std::mutex> lock(mu_);
  return temp_dir_;
}

}  // namespace vmrun::uhyve
