// GuestFiles across a snapshot: what the guest holds open is recorded by guest path,
// flags and offset (host descriptors mean nothing in another process), the private
// files are copied whole, and a restore reopens everything through the same
// resolution (mappings, RESOLVE_BENEATH) the guest's own opens use.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "common/error.h"
#include "hypercalls/guest_files.h"
#include "hypercalls/uhyve_abi.h"

namespace vmrun::uhyve {

namespace {

std::vector<uint8_t> read_whole(int fd, uint64_t size, const std::string& what) {
  std::vector<uint8_t> out(size);
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd, out.data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw VmrunError(ErrorCode::Host, errno_message("cannot read " + what, errno));
    if (n == 0) break;  // shrank meanwhile (it cannot: the guest is parked)
    done += static_cast<uint64_t>(n);
  }
  out.resize(done);
  return out;
}

void write_whole(int fd, const std::vector<uint8_t>& bytes, const std::string& what) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw VmrunError(ErrorCode::Host, errno_message("cannot write " + what, errno));
    done += static_cast<size_t>(n);
  }
}

int64_t mtime_ns(const struct stat& st) { return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec; }

/** A private file's name as create_temporary makes them ("file-N"): nothing a snapshot could aim elsewhere. */
bool is_private_name(const std::string& name) {
  if (name.size() <= 5 || name.size() > 24 || name.compare(0, 5, "file-") != 0) return false;
  for (size_t i = 5; i < name.size(); i++)
    if (name[i] < '0' || name[i] > '9') return false;
  return true;
}

}  // namespace

GuestFilesState GuestFiles::save() const {
  std::lock_guard<std::mutex> lock(mu_);
  GuestFilesState s;
  s.next_fd = next_fd_;
  s.temp_counter = temp_counter_;
  // Each private inode once, whether named, open, or both.
  std::map<std::pair<dev_t, ino_t>, uint32_t> by_inode;
  uint64_t bytes = 0;
  auto add_private = [&](int fd, const std::string& name) -> uint32_t {
    struct stat st;
    if (fstat(fd, &st) != 0) throw VmrunError(ErrorCode::Host, errno_message("cannot stat a Hermit guest's private file", errno));
    auto [it, fresh] = by_inode.emplace(std::make_pair(st.st_dev, st.st_ino), static_cast<uint32_t>(s.temp_files.size()));
    if (!fresh) {
      if (!name.empty()) s.temp_files[it->second].name = name;
      return it->second;
    }
    bytes += static_cast<uint64_t>(st.st_size);
    if (bytes > GuestFilesState::kMaxSavedTempBytes)
      throw VmrunError(ErrorCode::Usage, "the Hermit guest's private files (outside its file mappings) hold more than " +
                                             std::to_string(GuestFilesState::kMaxSavedTempBytes >> 20) + " MiB, more than a snapshot keeps");
    GuestFilesState::TempFile t;
    t.name = name;
    t.mode = static_cast<uint32_t>(st.st_mode) & 0777;
    t.content = read_whole(fd, static_cast<uint64_t>(st.st_size), "a Hermit guest's private file");
    s.temp_files.push_back(std::move(t));
    return it->second;
  };
  for (const auto& [key, name] : temp_files_) {
    int fd = openat(temp_dir_fd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw VmrunError(ErrorCode::Host, errno_message("the Hermit guest's private file " + key + " (" + temp_dir_ + "/" + name + ") cannot be saved", errno));
    try {
      s.temp_names.emplace_back(key, add_private(fd, name));
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
  }
  for (const auto& [guest_fd, file] : fds_) {
    GuestFilesState::OpenFile f;
    f.guest_fd = guest_fd;
    f.temporary = file.temporary;
    f.guest_path = file.guest_path;
    f.flags = file.flags;
    off_t at = ::lseek(file.fd, 0, SEEK_CUR);
    // Directories and the like have no position worth keeping.
    f.offset = at < 0 ? 0 : at;
    if (file.temporary) {
      f.temp_index = add_private(file.fd, "");
    } else {
      struct stat st;
      if (fstat(file.fd, &st) != 0) throw VmrunError(ErrorCode::Host, errno_message("cannot stat the Hermit guest's open file " + file.guest_path, errno));
      // A directory's size and mtime move with every file made in it (by the guest
      // itself, too): only which directory it is must hold.
      const bool directory = S_ISDIR(st.st_mode);
      f.size = directory ? 0 : static_cast<uint64_t>(st.st_size);
      f.mtime_ns = directory ? 0 : mtime_ns(st);
      f.inode = static_cast<uint64_t>(st.st_ino);
    }
    s.open_files.push_back(std::move(f));
  }
  return s;
}

void GuestFiles::restore(const GuestFilesState& s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fds_.empty() || !temp_files_.empty()) throw VmrunError(ErrorCode::Internal, "guest files restored into a table in use");
  auto refuse = [](const std::string& why) { throw VmrunError(ErrorCode::Snapshot, why); };

  // The private files, written back under their own names (unlinked ones under a
  // name removed once every descriptor on them is open again).
  std::vector<std::string> names(s.temp_files.size());
  std::vector<std::string> to_unlink;
  if (!s.temp_files.empty()) {
    if (int rc = ensure_temp_dir(); rc < 0) throw VmrunError(ErrorCode::Host, errno_message("cannot create a directory for the Hermit guest's private files", -rc));
  }
  for (size_t i = 0; i < s.temp_files.size(); i++) {
    const auto& t = s.temp_files[i];
    if (!t.name.empty() && !is_private_name(t.name)) refuse("the snapshot names a private file \"" + t.name + "\" vmrun never makes");
    names[i] = t.name.empty() ? "restored-" + std::to_string(i) : t.name;
    if (t.name.empty()) to_unlink.push_back(names[i]);
    int fd = openat(temp_dir_fd_, names[i].c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, t.mode & 0777);
    if (fd < 0) {
      if (errno == EEXIST) refuse("the snapshot holds the private file " + names[i] + " twice");
      throw VmrunError(ErrorCode::Host, errno_message("cannot recreate the Hermit guest's private file " + names[i], errno));
    }
    try {
      write_whole(fd, t.content, "the Hermit guest's private file " + names[i]);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
  }
  for (const auto& [key, index] : s.temp_names) {
    if (key != canonical_guest_path(key))
      refuse("the snapshot's private file path " + key + " is not normalised");
    if (!temp_files_.emplace(key, names[index]).second) refuse("the snapshot names the private file " + key + " twice");
  }

  for (const auto& f : s.open_files) {
    if (fds_.count(f.guest_fd)) refuse("the snapshot opens descriptor " + std::to_string(f.guest_fd) + " twice");
    // Reopened, never created or truncated again: the file is as the guest left it.
    int32_t flags = (f.flags & kAllowedOpenFlags) & ~(kOpenCreat | kOpenExcl | kOpenTrunc);
    int fd;
    if (f.temporary) {
      fd = openat(temp_dir_fd_, names[f.temp_index].c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) throw VmrunError(ErrorCode::Host, errno_message("cannot reopen the Hermit guest's private file " + f.guest_path, errno));
    } else {
      Resolved r = resolve(normalise_guest_path(f.guest_path));
      if (!r.found) refuse("the Hermit guest's open file " + f.guest_path + " is outside its file mappings");
      std::string host = host_path_of(r);
      fd = open_resolved(r, flags, 0);
      if (fd < 0) {
        if (errno == ENOENT) refuse("the Hermit guest's open file " + f.guest_path + " (" + host + ") is gone since the snapshot was taken");
        throw VmrunError(ErrorCode::Snapshot, errno_message("cannot reopen the Hermit guest's open file " + f.guest_path + " (" + host + ")", errno));
      }
      struct stat st;
      std::string changed;
      if (fstat(fd, &st) != 0) changed = "it cannot be examined";
      else if (static_cast<uint64_t>(st.st_ino) != f.inode) changed = "it is another file now";
      else if (S_ISDIR(st.st_mode)) changed = "";
      else if (static_cast<uint64_t>(st.st_size) != f.size)
        changed = "its size was " + std::to_string(f.size) + " bytes, now " + std::to_string(st.st_size);
      else if (mtime_ns(st) != f.mtime_ns) changed = "it was modified";
      if (!changed.empty()) {
        ::close(fd);
        refuse("the Hermit guest's open file " + f.guest_path + " (" + host + ") changed since the snapshot was taken (" + changed + ")");
      }
    }
    if (::lseek(fd, f.offset, SEEK_SET) < 0 && errno != ESPIPE && errno != EINVAL) {
      int err = errno;
      ::close(fd);
      throw VmrunError(ErrorCode::Snapshot, errno_message("cannot seek the Hermit guest's open file " + f.guest_path, err));
    }
    fds_[f.guest_fd] = OpenFile{fd, f.temporary, f.guest_path, f.flags};
  }
  for (const std::string& name : to_unlink) unlinkat(temp_dir_fd_, name.c_str(), 0);
  next_fd_ = s.next_fd;
  // Past every restored name, so the guest's next private file cannot collide with one.
  temp_counter_ = s.temp_counter;
  for (const auto& t : s.temp_files)
    if (!t.name.empty()) temp_counter_ = std::max<uint64_t>(temp_counter_, std::stoull(t.name.substr(5)));
}

}  // namespace vmrun::uhyve
