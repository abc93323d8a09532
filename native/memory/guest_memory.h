// Guest physical memory: host mappings of the guest's RAM regions, and the only way
// the VMM touches guest RAM. Every guest-supplied address goes through range() or the
// checked copy helpers, which refuse anything not entirely inside one RAM region:
// the guest is hostile and its pointers are never trusted.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace vmrun {

/** One contiguous range of guest RAM and where it lives in this process. */
struct GuestRegion {
  uint64_t guest_address;
  uint64_t size;
  uint8_t* host;  // start of the host mapping
};

/** Start of the 32-bit MMIO hole that RAM skips when the guest has more than fits below it. */
constexpr uint64_t kMmioHoleStart = 0xC000'0000ULL;
constexpr uint64_t kMmioHoleEnd = 0x1'0000'0000ULL;

class GuestMemory {
 public:
  /** Reserves `ram_size` bytes of anonymous memory laid out around the MMIO hole. */
  static GuestMemory anonymous(uint64_t ram_size);
  /** Maps `ram_size` bytes of a file privately (copy-on-write) in the same layout. */
  static GuestMemory from_file(int fd, uint64_t file_offset, uint64_t ram_size);
  /**
   * RAM in a memfd mapped shared, in the same layout: another process (a vhost-user
   * back end such as virtiofsd) can map it too, through shared_fd().
   */
  static GuestMemory shared(uint64_t ram_size);
  /**
   * shared() RAM holding a copy of `ram_size` bytes of a RAM image file (its data
   * extents only: holes stay unallocated). For a restore whose RAM another process
   * maps, where a private copy-on-write mapping of the image would hide the guest's
   * writes from it.
   */
  static GuestMemory shared_copy_of(int fd, uint64_t ram_size);

  /**
   * Reserves `ram_size` bytes of anonymous memory as one region at `guest_base`
   * (machines without a PC's MMIO hole, e.g. arm64's RAM at 1 GiB).
   */
  static GuestMemory anonymous_at(uint64_t guest_base, uint64_t ram_size);
  /**
   * Makes all RAM one region at `guest_base` instead of the PC layout the factories
   * give (machines without a PC's MMIO hole, e.g. arm64's RAM at 1 GiB). The host
   * mapping, and so every RAM offset of a snapshot, stays as it was. Only before the
   * memory is registered with a VM.
   */
  void place_at(uint64_t guest_base);

  GuestMemory() = default;
  GuestMemory(GuestMemory&&) noexcept;
  GuestMemory& operator=(GuestMemory&&) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory();

  const std::vector<GuestRegion>& regions() const { return regions_; }
  uint64_t ram_size() const { return ram_size_; }
  /** All RAM as one host range: the regions back to back ("RAM offset" space of snapshots). */
  uint8_t* host_base() const { return mapping_; }
  /** The memfd behind shared() RAM (offset 0 = host_base()), or -1. Owned by this object. */
  int shared_fd() const { return shared_fd_; }
  /** The guest-physical address one past the last RAM byte. */
  uint64_t end_address() const;

  /** Host pointer for [gpa, gpa+len) if it lies inside one RAM region, else nullptr. */
  uint8_t* range(uint64_t gpa, uint64_t len) const;
  bool contains(uint64_t gpa, uint64_t len) const { return range(gpa, len) != nullptr; }
  /** Checked copies; return false (and touch nothing) if the range is not RAM. */
  bool read(uint64_t gpa, void* dst, uint64_t len) const;
  bool write(uint64_t gpa, const void* src, uint64_t len) const;

  template <typename T>
  std::optional<T> read_obj(uint64_t gpa) const {
    T v;
    if (!read(gpa, &v, sizeof(T))) return std::nullopt;
    return v;
  }
  template <typename T>
  bool write_obj(uint64_t gpa, const T& v) const {
    return write(gpa, &v, sizeof(T));
  }

 private:
  static GuestMemory map(uint64_t ram_size, int flags, int fd, uint64_t file_offset, const char* what);
  void unmap();
  std::vector<GuestRegion> regions_;
  uint64_t ram_size_ = 0;
  uint8_t* mapping_ = nullptr;  // one host mapping holding every region back to back
  uint64_t mapping_size_ = 0;
  int shared_fd_ = -1;
};

/** The RAM layout for a given size: below the MMIO hole, then the rest above 4 GiB. */
std::vector<std::pair<uint64_t, uint64_t>> ram_layout(uint64_t ram_size);

}  // namespace vmrun
