#include "arch/x86_64/page_walk.h"

namespace vmrun::x86 {

namespace {
constexpr uint64_t kPresent = 1, kLargePage = 0x80;
constexpr uint64_t kAddressMask = 0x000F'FFFF'FFFF'F000ULL;
}  // namespace

std::optional<uint64_t> translate(const GuestMemory& m, const PagingState& p, uint64_t vaddr) {
  if (!(p.cr0 & kCr0Pg)) return vaddr;  // paging off: virtual is physical
  if (!(p.cr4 & kCr4Pae) || !(p.efer & kEferLma)) return std::nullopt;  // only long mode is walked
  uint64_t table = p.cr3 & kAddressMask;
  // Levels: PML4 (bits 47:39), PDPT (38:30), PD (29:21), PT (20:12).
  for (int level = 3; level >= 0; level--) {
    uint64_t index = (vaddr >> (12 + 9 * level)) & 0x1FF;
    auto entry = m.read_obj<uint64_t>(table + index * 8);
    if (!entry || !(*entry & kPresent)) return std::nullopt;
    if ((level == 2 || level == 1) && (*entry & kLargePage)) {
      uint64_t page_size = 1ULL << (12 + 9 * level);
      return (*entry & kAddressMask & ~(page_size - 1)) | (vaddr & (page_size - 1));
    }
    table = *entry & kAddressMask;
  }
  return table | (vaddr & 0xFFF);
}

size_t read_guest_virtual(const GuestMemory& m, const PagingState& p, uint64_t vaddr, uint8_t* out, size_t len) {
  size_t done = 0;
  while (done < len) {
    auto pa = translate(m, p, vaddr + done);
    if (!pa) break;
    size_t in_page = 0x1000 - ((vaddr + done) & 0xFFF);
    size_t n = std::min(in_page, len - done);
    if (!m.read(*pa, out + done, n)) break;
    done += n;
  }
  return done;
}

}  // namespace vmrun::x86
