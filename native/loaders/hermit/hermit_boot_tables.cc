#include "loaders/hermit/hermit_boot_tables.h"

#include <cstring>

#include "common/error.h"
#include "loaders/hermit/hermit_layout.h"

namespace vmrun::hermit {

namespace {
constexpr uint64_t kPresent = 1, kWritable = 2, kHugePage = 0x80;
constexpr uint64_t kTableSize = 0x1000;
constexpr uint64_t kGdt[] = {0, 0x00AF9B000000FFFFULL, 0x00CF93000000FFFFULL};
constexpr uint16_t kCodeSelector = 0x08, kDataSelector = 0x10;

void must(bool ok, const char* what) {
  if (!ok) throw VmrunError(ErrorCode::Usage, std::string("guest memory is too small for the Hermit ") + what);
}

/** Hands out zeroed 4 KiB tables from uhyve's pool. */
class TablePool {
 public:
  explicit TablePool(const GuestMemory& m) : m_(m) {}
  uint64_t allocate() {
    if (next_ >= kPageTablePoolEnd)
      throw VmrunError(ErrorCode::Usage, "the Hermit kernel lies too high to identity-map with uhyve's page-table pool (0x11000-0x30000)");
    uint8_t* p = m_.range(next_, kTableSize);
    must(p != nullptr, "page tables");
    std::memset(p, 0, kTableSize);
    uint64_t table = next_;
    next_ += kTableSize;
    return table;
  }
  /** The table entry `index` of `table` points to, allocating it if empty. */
  uint64_t child(uint64_t table, uint64_t index) {
    uint64_t entry = *m_.read_obj<uint64_t>(table + index * 8);
    if (entry & kPresent) return entry & ~0xFFFULL;
    uint64_t fresh = allocate();
    m_.write_obj<uint64_t>(table + index * 8, fresh | kPresent | kWritable);
    return fresh;
  }

 private:
  const GuestMemory& m_;
  uint64_t next_ = kPageTablePoolStart;
};
}  // namespace

void write_gdt(const GuestMemory& m, x86::StartState& s) {
  must(m.write(kGdtAddress, kGdt, sizeof kGdt), "GDT");
  s.gdt_base = kGdtAddress;
  s.gdt_limit = sizeof kGdt - 1;  // 23
  s.idt_base = 0;
  s.idt_limit = 0;
  s.cs = x86::segment_from_descriptor(kGdt[1], kCodeSelector);
  s.ds = s.es = s.fs = s.gs = s.ss = x86::segment_from_descriptor(kGdt[2], kDataSelector);
}

uint64_t write_page_tables(const GuestMemory& m, uint64_t last_address) {
  uint8_t* pml4 = m.range(kPml4Address, kTableSize);
  must(pml4 != nullptr, "page tables");
  std::memset(pml4, 0, kTableSize);
  // Recursive slot: the kernel edits its page tables through the top 512 GiB.
  m.write_obj<uint64_t>(kPml4Address + 511 * 8, kPml4Address | kPresent | kWritable);
  TablePool pool(m);
  for (uint64_t address = 0; address <= last_address; address += kLargePageSize) {
    uint64_t pdpt = pool.child(kPml4Address, (address >> 39) & 0x1FF);
    uint64_t pd = pool.child(pdpt, (address >> 30) & 0x1FF);
    m.write_obj<uint64_t>(pd + ((address >> 21) & 0x1FF) * 8, address | kPresent | kWritable | kHugePage);
    if (address + kLargePageSize < address) break;
  }
  return kPml4Address;
}

x86::StartState start_state(const x86::StartState& tables, uint64_t entry, uint64_t kernel_address, int cpu_id) {
  x86::StartState s = tables;
  s.rip = entry;
  s.rdi = kBootInfoAddress;
  s.rsi = static_cast<uint64_t>(cpu_id);
  s.rsp = kernel_address - kBootStackSize;  // the kernel adds its own offset
  s.rflags = 2;
  s.cr0 = x86::kCr0Pe | x86::kCr0Et | x86::kCr0Ne | x86::kCr0Pg;  // 0x80000031
  s.cr4 = x86::kCr4Pae;
  s.efer = x86::kEferLme | x86::kEferLma | x86::kEferNxe;
  return s;
}

}  // namespace vmrun::hermit
