#include "snapshot/memory_image.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "common/error.h"
#include "common/hex.h"
#include "snapshot/crc32c.h"

namespace vmrun {

namespace {

bool page_is_zero(const uint8_t* p) {
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  uint64_t acc = 0;
  for (size_t i = 0; i < kPageSize / 8; i += 8)
    acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
  return acc == 0;
}

bool bit(const MemoryChunk& c, uint64_t page) { return (c.bitmap[page / 64] >> (page % 64)) & 1; }

unsigned worker_count() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 2 : std::min(n, 16u);
}

/** Runs `work(i)` for i in [0, n) on every core. */
template <typename F>
void parallel_for(size_t n, F work) {
  std::atomic<size_t> next{0};
  auto run = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) work(i);
  };
  std::vector<std::thread> threads;
  unsigned k = std::min<size_t>(worker_count(), n);
  for (unsigned t = 1; t < k; t++) threads.emplace_back(run);
  run();
  for (auto& t : threads) t.join();
}

[[noreturn]] void snapshot_error(const std::string& what) { throw VmrunError(ErrorCode::Snapshot, what); }

/**
 * An exclusive flock on `path` (created if missing), held until destruction. A prune
 * may unlink the file while a builder waits for it: after locking, the file at
 * `path` must still be the one locked, else the new one is locked instead.
 */
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    for (;;) {
      fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (fd_ < 0) throw VmrunError(ErrorCode::Host, errno_message("cannot create the lock " + path, errno));
      int r;
      while ((r = flock(fd_, LOCK_EX)) != 0 && errno == EINTR) {
      }
      if (r != 0) {
        int err = errno;
        close(fd_);
        throw VmrunError(ErrorCode::Host, errno_message("cannot lock " + path, err));
      }
      struct stat held, named;
      if (fstat(fd_, &held) == 0 && stat(path.c_str(), &named) == 0 && held.st_dev == named.st_dev && held.st_ino == named.st_ino) return;
      close(fd_);
    }
  }
  ~FileLock() { close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

RamCapture capture_ram(const GuestMemory& memory, bool copy) {
  RamCapture cap;
  cap.copied = copy;
  const uint64_t pages = memory.ram_size() / kPageSize;
  const uint64_t chunk_count = (pages + kChunkPages - 1) / kChunkPages;
  uint8_t* base = memory.host_base();
  // Pages never touched are not resident: no need to even read them.
  std::vector<unsigned char> resident(pages);
  if (mincore(base, memory.ram_size(), resident.data()) != 0) std::fill(resident.begin(), resident.end(), 1);

  // Pass 1, on every core: which resident pages are not all zero.
  std::vector<MemoryChunk> all(chunk_count);
  std::vector<uint64_t> touched(chunk_count, 0);
  parallel_for(chunk_count, [&](size_t k) {
    MemoryChunk& c = all[k];
    c = MemoryChunk{};
    c.ram_offset = k * kChunkBytes;
    for (uint64_t i = 0; i < kChunkPages && k * kChunkPages + i < pages; i++) {
      uint64_t p = k * kChunkPages + i;
      if (!(resident[p] & 1)) continue;
      touched[k]++;
      if (page_is_zero(base + p * kPageSize)) continue;
      c.bitmap[i / 64] |= 1ULL << (i % 64);
      c.page_count++;
    }
  });
  uint64_t saved_pages = 0;
  for (size_t k = 0; k < chunk_count; k++) {
    cap.touched_pages += touched[k];
    if (all[k].page_count == 0) continue;
    cap.chunks.push_back(all[k]);
    cap.chunk_page_start.push_back(saved_pages);
    saved_pages += all[k].page_count;
  }
  if (!copy) return cap;
  // Pass 2, on every core: copy them out, each chunk into its own slot.
  cap.pages.reset(new uint8_t[saved_pages * kPageSize]);
  parallel_for(cap.chunks.size(), [&](size_t i) {
    const MemoryChunk& c = cap.chunks[i];
    uint8_t* dst = cap.pages.get() + cap.chunk_page_start[i] * kPageSize;
    for (uint64_t p = 0; p < kChunkPages; p++)
      if (bit(c, p)) {
        std::memcpy(dst, base + c.ram_offset + p * kPageSize, kPageSize);
        dst += kPageSize;
      }
  });
  return cap;
}

uint64_t write_ram_chunks(RamCapture& cap, const GuestMemory& memory, int fd, uint64_t offset, int level) {
  std::vector<std::vector<uint8_t>> frames(cap.chunks.size());
  std::atomic<bool> failed{false};
  parallel_for(cap.chunks.size(), [&](size_t i) {
    MemoryChunk& c = cap.chunks[i];
    std::vector<uint8_t> gathered;
    const uint8_t* src;
    if (cap.copied) {
      src = cap.pages.get() + cap.chunk_page_start[i] * kPageSize;
    } else {
      gathered.reserve(c.page_count * kPageSize);
      for (uint64_t p = 0; p < kChunkPages; p++)
        if (bit(c, p)) {
          const uint8_t* page = memory.host_base() + c.ram_offset + p * kPageSize;
          gathered.insert(gathered.end(), page, page + kPageSize);
        }
      src = gathered.data();
    }
    size_t n = c.page_count * kPageSize;
    std::vector<uint8_t>& out = frames[i];
    out.resize(ZSTD_compressBound(n));
    size_t z = ZSTD_compress(out.data(), out.size(), src, n, level);
    if (ZSTD_isError(z)) {
      failed = true;
      return;
    }
    out.resize(z);
    c.compressed_size = static_cast<uint32_t>(z);
    c.crc = crc32c(out.data(), z);
  });
  if (failed) throw VmrunError(ErrorCode::Internal, "zstd failed to compress guest memory");
  uint64_t pos = 0;
  for (size_t i = 0; i < frames.size(); i++) {
    cap.chunks[i].data_offset = pos;
    const auto& f = frames[i];
    size_t done = 0;
    while (done < f.size()) {
      ssize_t w = pwrite(fd, f.data() + done, f.size() - done, static_cast<off_t>(offset + pos + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw VmrunError(ErrorCode::Host, errno_message("cannot write the snapshot", errno));
      done += static_cast<size_t>(w);
    }
    pos += f.size();
  }
  return pos;
}

void validate_memory_index(const std::vector<MemoryChunk>& chunks, uint64_t ram_size, uint64_t data_length) {
  uint64_t previous_end = 0;
  for (size_t i = 0; i < chunks.size(); i++) {
    const MemoryChunk& c = chunks[i];
    std::string name = "memory chunk " + std::to_string(i);
    if (c.ram_offset % kChunkBytes != 0 || c.ram_offset >= ram_size) snapshot_error(name + " has a bad RAM offset " + hex(c.ram_offset));
    if (i > 0 && c.ram_offset < previous_end) snapshot_error(name + " overlaps the previous one");
    previous_end = c.ram_offset + kChunkBytes;
    uint64_t bits = 0;
    for (uint64_t w : c.bitmap) bits += static_cast<uint64_t>(__builtin_popcountll(w));
    if (bits != c.page_count || c.page_count == 0) snapshot_error(name + " has a page count that does not match its bitmap");
    uint64_t last_page = 0;
    for (uint64_t p = 0; p < kChunkPages; p++)
      if (bit(c, p)) last_page = p;
    if (c.ram_offset + (last_page + 1) * kPageSize > ram_size) snapshot_error(name + " holds pages beyond the end of RAM");
    if (c.data_offset > data_length || c.compressed_size > data_length - c.data_offset) snapshot_error(name + " lies outside the memory data");
    if (c.compressed_size > ZSTD_compressBound(kChunkBytes)) snapshot_error(name + " is larger than any compressed chunk");
  }
}

const char* expand_memory_chunk(const MemoryChunk& c, const uint8_t* frame, uint8_t* image) {
  if (crc32c(frame, c.compressed_size) != c.crc) return "fails its checksum (the file is corrupt)";
  uint64_t expected = c.page_count * kPageSize;
  if (ZSTD_getFrameContentSize(frame, c.compressed_size) != expected) return "has the wrong decompressed size (the file is corrupt)";
  std::vector<uint8_t> pages(expected);
  size_t n = ZSTD_decompress(pages.data(), pages.size(), frame, c.compressed_size);
  if (ZSTD_isError(n) || n != expected) return "does not decompress (the file is corrupt)";
  uint64_t k = 0;
  for (uint64_t p = 0; p < kChunkPages; p++)
    if (bit(c, p)) std::memcpy(image + c.ram_offset + p * kPageSize, pages.data() + (k++) * kPageSize, kPageSize);
  return nullptr;
}

bool build_ram_image(int snapshot_fd, const std::string& snapshot_name, uint64_t data_offset, uint64_t data_length,
                     const std::vector<MemoryChunk>& chunks, uint64_t ram_size, const std::string& temp_path,
                     const std::string& cache_path) {
  const std::string what = "snapshot " + snapshot_name;
  // Validate the whole index before touching anything.
  validate_memory_index(chunks, ram_size, data_length);

  // One builder at a time; the others then find the image and map that very file
  // (a second build renamed over it would leave VMs on two inodes, sharing nothing).
  FileLock lock(cache_path + ".lock");
  if (access(cache_path.c_str(), F_OK) == 0) return false;

  // The caller's descriptor, never the path again: the file checked is the file read.
  // Frames are read with pread, not mapped, so a file truncated meanwhile is a short
  // read (an error) instead of a SIGBUS that would kill the whole host process.
  struct stat st;
  if (fstat(snapshot_fd, &st) != 0) throw VmrunError(ErrorCode::Host, errno_message("cannot stat " + what, errno));
  if (!S_ISREG(st.st_mode)) snapshot_error(what + " is not a regular file");
  if (data_offset > static_cast<uint64_t>(st.st_size) || data_length > static_cast<uint64_t>(st.st_size) - data_offset)
    snapshot_error(what + " changed since it was opened: it is shorter than its memory data (truncated?)");

  int out = ::open(temp_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) throw VmrunError(ErrorCode::Host, errno_message("cannot create the RAM image " + temp_path, errno));
  auto discard = [&] {
    close(out);
    unlink(temp_path.c_str());
  };
  uint8_t* image = nullptr;
  if (ftruncate(out, static_cast<off_t>(ram_size)) != 0 ||
      (image = static_cast<uint8_t*>(mmap(nullptr, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, out, 0))) == MAP_FAILED) {
    int err = errno;
    discard();
    throw VmrunError(ErrorCode::Host, errno_message("cannot size the RAM image " + cache_path, err));
  }
  std::atomic<long> bad{-1};
  std::string bad_reason;
  parallel_for(chunks.size(), [&](size_t i) {
    if (bad.load() >= 0) return;
    const MemoryChunk& c = chunks[i];
    auto fail = [&](const char* why) {
      long expected = -1;
      if (bad.compare_exchange_strong(expected, static_cast<long>(i))) bad_reason = why;
    };
    std::vector<uint8_t> frame(c.compressed_size);
    for (size_t done = 0; done < frame.size();) {
      ssize_t n = pread(snapshot_fd, frame.data() + done, frame.size() - done, static_cast<off_t>(data_offset + c.data_offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail("cannot be read (the file changed since it was opened: truncated?)");
      done += static_cast<size_t>(n);
    }
    if (const char* why = expand_memory_chunk(c, frame.data(), image)) fail(why);
  });
  munmap(image, ram_size);
  if (bad.load() >= 0) {
    discard();
    snapshot_error(what + ": memory chunk " + std::to_string(bad.load()) + " " + bad_reason);
  }
  if (rename(temp_path.c_str(), cache_path.c_str()) != 0) {
    int err = errno;
    discard();
    throw VmrunError(ErrorCode::Host, errno_message("cannot store the RAM image " + cache_path, err));
  }
  close(out);
  return true;
}

}  // namespace vmrun
