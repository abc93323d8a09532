// The host files a Hermit guest may touch, as uhyve's --file-mapping defines them:
// only mapped paths are visible; files the guest creates elsewhere live in a private
// temporary directory removed when the guest ends; `..`, symlinks and absolute paths
// cannot leave a mapped directory (openat2 with RESOLVE_BENEATH). Guest file
// descriptors are this table's own numbers, never the host's, so a guest cannot read
// or close a descriptor of the VMM. Every result is a count, a descriptor or -errno.
#pragma once
#include <sys/uio.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "hypercalls/guest_files_state.h"

namespace vmrun::uhyve {

/**
 * Bounds on the private files a guest creates (outside every mapping), so a guest
 * cannot fill the host's $TMPDIR: past the count an open with O_CREAT gives -ENOSPC,
 * a write past the per-file size -EFBIG (after a short write up to it, as Linux's
 * RLIMIT_FSIZE), and a write growing them past the total -ENOSPC (likewise). Sizes
 * are apparent sizes (a sparse file counts whole). Exported to TypeScript.
 */
constexpr size_t kMaxTempFiles = 64;
constexpr uint64_t kMaxTempFileBytes = 256ULL << 20;
constexpr uint64_t kMaxTempBytes = 1ULL << 30;
/** Descriptors a guest may hold open at once (past it an open gives -EMFILE). */
constexpr size_t kMaxOpenFiles = 1024;

/** One --file-mapping: a host file or directory and where the guest sees it. */
struct FileMapping {
  std::string host;   // absolute, symlinks resolved
  std::string guest;  // absolute, normalised ("/data")
  bool is_directory = false;
};

/** Parses and checks "HOST:GUEST" strings; throws VmrunError naming the bad one (after `label`). */
std::vector<FileMapping> parse_file_mappings(const std::vector<std::string>& specs, const std::string& label = "--file-mapping");

/** Splits a guest path into normalised components: "." dropped, ".." popped (never above "/"). */
std::vector<std::string> normalise_guest_path(const std::string& path);
/** The same as one absolute path ("/a/b"): how the guest's private files are keyed. */
std::string canonical_guest_path(const std::string& path);

class GuestFiles {
 public:
  explicit GuestFiles(std::vector<FileMapping> mappings);
  ~GuestFiles();
  GuestFiles(const GuestFiles&) = delete;
  GuestFiles& operator=(const GuestFiles&) = delete;

  /** Opens a guest path with uhyve's masked flags; returns a guest fd or -errno. */
  int32_t open(const std::string& guest_path, int32_t flags, int32_t mode);
  int32_t close(int32_t fd);
  int64_t read(int32_t fd, const std::vector<iovec>& into);
  int64_t write(int32_t fd, const std::vector<iovec>& from);
  int64_t lseek(int32_t fd, int64_t offset, int32_t whence);
  int32_t unlink(const std::string& guest_path);

  /**
   * The open descriptors and private files, for a snapshot (the vCPUs are parked).
   * Throws VmrunError(Usage) when the private files hold more than a snapshot keeps.
   */
  GuestFilesState save() const;
  /**
   * Reopens what `save` recorded, on a GuestFiles fresh from the same mappings: each
   * mapped file by its guest path under the same isolation rules, at its offset; the
   * private files written back. Throws VmrunError(Snapshot) in one line when a mapped
   * file vanished or changed since the save; what was reopened is closed again.
   */
  void restore(const GuestFilesState& state);

  /** Guest directories the kernel should send file hypercalls for (FDT /uhyve,mounts). */
  std::vector<std::string> mount_points() const;
  /** The private directory for created files ("" until the guest created one); for tests and logs. */
  std::string temp_dir() const;

 private:
  struct Resolved {
    int dir_fd = -1;           // resolve `relative` beneath this directory
    std::string relative;      // "" for a mapped file itself
    std::string host_file;     // for a mapped file: its host path
    bool found = false;
  };
  Resolved resolve(const std::vector<std::string>& components) const;
  /** Opens a resolved mapped path under its mapping's isolation rules; a host fd or -1 (errno set). */
  int open_resolved(const Resolved& r, int32_t flags, int32_t mode) const;
  /** The host path behind a resolved guest path, for messages. */
  std::string host_path_of(const Resolved& r) const;
  struct OpenFile {
    int fd = -1;
    bool temporary = false;  // one of the guest's private files: writes are bounded
    std::string guest_path;  // normalised; how a restore finds a mapped file again
    int32_t flags = 0;       // as opened (masked guest flags)
  };
  int32_t install(int host_fd, const std::string& guest_path, int32_t flags, bool temporary = false);
  /** Creates the private directory on first use; 0 or -errno. */
  int ensure_temp_dir();
  int host_fd(int32_t guest_fd) const;
  /** Bytes the private files hold now (named ones and unlinked ones still open). */
  uint64_t temporary_bytes() const;
  /** How many of `wanted` bytes a write at the fd's position may add, or -EFBIG / -ENOSPC. */
  int64_t temporary_write_allowance(int fd, uint64_t wanted) const;
  int32_t create_temporary(const std::string& guest_key, int32_t flags, int32_t mode);

  std::vector<FileMapping> mappings_;
  std::vector<int> mapping_dir_fds_;  // O_PATH fd per directory mapping (-1 for files)
  mutable std::mutex mu_;
  std::map<int32_t, OpenFile> fds_;  // guest fd -> host fd
  int32_t next_fd_ = 3;         // 0, 1, 2 are the console
  std::string temp_dir_;
  int temp_dir_fd_ = -1;
  std::map<std::string, std::string> temp_files_;  // normalised guest path -> name in temp_dir_
  uint64_t temp_counter_ = 0;
};

}  // namespace vmrun::uhyve
