#include "memory/guest_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace vmrun {

std::vector<std::pair<uint64_t, uint64_t>> ram_layout(uint64_t ram_size) {
  if (ram_size <= kMmioHoleStart) return {{0, ram_size}};
  return {{0, kMmioHoleStart}, {kMmioHoleEnd, ram_size - kMmioHoleStart}};
}

static void add_regions(uint8_t* mapping, uint64_t ram_size, std::vector<GuestRegion>& out) {
  uint64_t offset = 0;
  for (auto [gpa, size] : ram_layout(ram_size)) {
    out.push_back({gpa, size, mapping + offset});
    offset += size;
  }
}

/**
 * An inaccessible page on each side of guest RAM: the RAM mapping never merges with a
 * neighbouring one, so /proc/self/smaps shows it as its own entry (the library's
 * memory accounting reads it there), and a host overrun past either end faults.
 */
constexpr uint64_t kGuardBytes = 4096;

/**
 * Guest RAM starts on a 2 MiB boundary of the host's address space, so guest-physical
 * and host-virtual addresses agree modulo 2 MiB: where the host backs RAM with
 * transparent huge pages, KVM can then map them whole (one nested-paging fault per
 * 2 MiB instead of one per 4 KiB page), as QEMU's RAM alignment allows it too.
 */
constexpr uint64_t kRamAlignment = 2ULL << 20;

GuestMemory GuestMemory::map(uint64_t ram_size, int flags, int fd, uint64_t file_offset, const char* what) {
  // Reserve room for the alignment, then give back what lies outside guard + RAM + guard.
  const uint64_t align = kRamAlignment;
  const uint64_t reserve = ram_size + 2 * kGuardBytes + align;
  void* reserved = mmap(nullptr, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED) throw VmrunError(ErrorCode::Host, errno_message(what, errno));
  const uint64_t start = reinterpret_cast<uint64_t>(reserved);
  const uint64_t ram = (start + kGuardBytes + align - 1) & ~(align - 1);
  const uint64_t end = ram + ram_size + kGuardBytes;
  if (ram - kGuardBytes > start) munmap(reserved, ram - kGuardBytes - start);
  if (start + reserve > end) munmap(reinterpret_cast<void*>(end), start + reserve - end);
  uint8_t* at = reinterpret_cast<uint8_t*>(ram);
  void* p = mmap(at, ram_size, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, static_cast<off_t>(file_offset));
  if (p == MAP_FAILED) {
    int err = errno;
    munmap(at - kGuardBytes, ram_size + 2 * kGuardBytes);
    throw VmrunError(ErrorCode::Host, errno_message(what, err));
  }
  GuestMemory m;
  m.mapping_ = static_cast<uint8_t*>(p);
  m.mapping_size_ = ram_size;
  m.ram_size_ = ram_size;
  add_regions(m.mapping_, ram_size, m.regions_);
  return m;
}

GuestMemory GuestMemory::anonymous(uint64_t ram_size) {
  // MAP_NORESERVE: untouched guest pages cost nothing, so an idle VM stays small.
  return map(ram_size, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, "cannot reserve guest memory");
}

GuestMemory GuestMemory::anonymous_at(uint64_t guest_base, uint64_t ram_size) {
  GuestMemory m = anonymous(ram_size);
  m.place_at(guest_base);
  return m;
}

void GuestMemory::place_at(uint64_t guest_base) { regions_ = {{guest_base, ram_size_, mapping_}}; }

GuestMemory GuestMemory::from_file(int fd, uint64_t file_offset, uint64_t ram_size) {
  // MAP_PRIVATE: pages load lazily from the page cache and guest writes are
  // copy-on-write, so several VMs can share one RAM image.
  return map(ram_size, MAP_PRIVATE | MAP_NORESERVE, fd, file_offset, "cannot map guest memory image");
}

GuestMemory GuestMemory::shared(uint64_t ram_size) {
  int fd = memfd_create("vmrun-guest-ram", MFD_CLOEXEC);
  if (fd < 0) throw VmrunError(ErrorCode::Host, errno_message("cannot create shared guest memory (memfd)", errno));
  if (ftruncate(fd, static_cast<off_t>(ram_size)) != 0) {
    int e = errno;
    close(fd);
    throw VmrunError(ErrorCode::Host, errno_message("cannot size shared guest memory", e));
  }
  GuestMemory m;
  try {
    // Pages are allocated on first touch, as for anonymous RAM.
    m = map(ram_size, MAP_SHARED | MAP_NORESERVE, fd, 0, "cannot map shared guest memory");
  } catch (...) {
    close(fd);
    throw;
  }
  m.shared_fd_ = fd;
  return m;
}

GuestMemory GuestMemory::shared_copy_of(int fd, uint64_t ram_size) {
  GuestMemory m = shared(ram_size);
  uint8_t* base = m.host_base();
  off_t at = 0;
  const off_t end = static_cast<off_t>(ram_size);
  while (at < end) {
    off_t data = lseek(fd, at, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only holes from here on
    if (data < 0) throw VmrunError(ErrorCode::Host, errno_message("cannot read the RAM image", errno));
    if (data >= end) break;
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) throw VmrunError(ErrorCode::Host, errno_message("cannot read the RAM image", errno));
    if (hole > end) hole = end;
    for (off_t p = data; p < hole;) {
      ssize_t n = pread(fd, base + p, static_cast<size_t>(hole - p), p);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw VmrunError(ErrorCode::Host, errno_message("cannot read the RAM image", errno));
      if (n == 0) throw VmrunError(ErrorCode::Snapshot, "the RAM image is shorter than the snapshot's memory size");
      p += n;
    }
    at = hole;
  }
  return m;
}

GuestMemory::GuestMemory(GuestMemory&& o) noexcept { *this = std::move(o); }

GuestMemory& GuestMemory::operator=(GuestMemory&& o) noexcept {
  if (this != &o) {
    unmap();
    regions_ = std::move(o.regions_);
    ram_size_ = o.ram_size_;
    mapping_ = o.mapping_;
    mapping_size_ = o.mapping_size_;
    shared_fd_ = o.shared_fd_;
    o.shared_fd_ = -1;
    o.mapping_ = nullptr;
    o.mapping_size_ = 0;
    o.regions_.clear();
  }
  return *this;
}

GuestMemory::~GuestMemory() { unmap(); }

void GuestMemory::unmap() {
  if (mapping_) munmap(mapping_ - kGuardBytes, mapping_size_ + 2 * kGuardBytes);
  mapping_ = nullptr;
  if (shared_fd_ >= 0) close(shared_fd_);
  shared_fd_ = -1;
}

uint64_t GuestMemory::end_address() const {
  return regions_.empty() ? 0 : regions_.back().guest_address + regions_.back().size;
}

uint8_t* GuestMemory::range(uint64_t gpa, uint64_t len) const {
  for (const auto& r : regions_) {
    // Written to avoid overflow: gpa + len may wrap for a hostile len.
    if (gpa >= r.guest_address && gpa - r.guest_address <= r.size && len <= r.size - (gpa - r.guest_address)) {
      return r.host + (gpa - r.guest_address);
    }
  }
  return nullptr;
}

bool GuestMemory::read(uint64_t gpa, void* dst, uint64_t len) const {
  uint8_t* p = range(gpa, len);
  if (!p) return false;
  std::memcpy(dst, p, len);
  return true;
}

bool GuestMemory::write(uint64_t gpa, const void* src, uint64_t len) const {
  uint8_t* p = range(gpa, len);
  if (!p) return false;
  std::memcpy(p, src, len);
  return true;
}

}  // namespace vmrun
