#include "arch/x86_64/boot_tables.h"

#include "arch/x86_64/layout.h"
#include "common/error.h"

namespace vmrun::x86 {

namespace {
constexpr uint64_t kPresent = 1, kWritable = 2, kPageSize = 0x80;
void must_write(bool ok, const char* what) {
  if (!ok) throw VmrunError(ErrorCode::Usage, std::string("guest memory is too small for the ") + what);
}
}  // namespace

uint64_t write_identity_page_tables(const GuestMemory& m) {
  const uint64_t pdpt = kPml4Address + 0x1000, pd = kPml4Address + 0x2000;
  must_write(m.write_obj<uint64_t>(kPml4Address, pdpt | kPresent | kWritable), "page tables");
  for (uint64_t g = 0; g < 4; g++) {
    must_write(m.write_obj<uint64_t>(pdpt + g * 8, (pd + g * 0x1000) | kPresent | kWritable), "page tables");
    for (uint64_t i = 0; i < 512; i++) {
      uint64_t address = (g << 30) | (i << 21);
      must_write(m.write_obj<uint64_t>(pd + g * 0x1000 + i * 8, address | kPresent | kWritable | kPageSize), "page tables");
    }
  }
  return kPml4Address;
}

void write_linux_boot_gdt(const GuestMemory& m, StartState& s) {
  const uint64_t gdt[] = {
      0,                      // null
      0,                      // unused (Linux's __BOOT_CS is entry 2)
      0x00AF9B000000FFFFULL,  // 0x10: 64-bit code, present, DPL 0
      0x00CF93000000FFFFULL,  // 0x18: data, 4 GiB flat, writable
  };
  must_write(m.write(kBootGdtAddress, gdt, sizeof gdt), "boot GDT");
  must_write(m.write_obj<uint64_t>(kBootIdtAddress, 0), "boot IDT");
  s.gdt_base = kBootGdtAddress;
  s.gdt_limit = sizeof gdt - 1;
  s.idt_base = kBootIdtAddress;
  s.idt_limit = 7;
  s.cs = segment_from_descriptor(gdt[2], 0x10);
  s.ds = s.es = s.fs = s.gs = s.ss = segment_from_descriptor(gdt[3], 0x18);
}

void set_long_mode(StartState& s, uint64_t cr3) {
  s.cr3 = cr3;
  s.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Pg;
  s.cr4 = kCr4Pae;
  s.efer = kEferLme | kEferLma;
}

}  // namespace vmrun::x86
