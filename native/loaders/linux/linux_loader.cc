#include "loaders/linux/linux_loader.h"

#include <algorithm>

#include "arch/x86_64/boot_tables.h"
#include "arch/x86_64/layout.h"
#include "common/error.h"
#include "common/hex.h"
#include "loaders/elf64.h"
#include "loaders/linux/zero_page.h"

namespace vmrun {

using namespace linux_boot;

namespace {

constexpr uint16_t kMinBootProtocol = 0x020C;  // 2.12: xloadflags, 64-bit entry
constexpr uint64_t kStartup64Offset = 0x200;   // 64-bit entry from the protected-mode start
constexpr uint32_t kDefaultInitrdAddrMax = 0x37FFFFFF;
constexpr uint32_t kElfCmdlineLimit = 2048;    // x86 COMMAND_LINE_SIZE

[[noreturn]] void format_error(const LinuxBootInput& in, const std::string& why) {
  throw VmrunError(ErrorCode::KernelFormat, "kernel " + in.kernel_path + ": " + why);
}

void copy_to_guest(const GuestMemory& m, uint64_t gpa, const uint8_t* src, uint64_t len, uint64_t zero_to, const std::string& what) {
  uint8_t* dst = m.range(gpa, zero_to);
  if (!dst)
    throw VmrunError(ErrorCode::Usage, what + " does not fit in guest memory (needs up to " + hex(gpa + zero_to) + ", RAM ends at " + hex(m.end_address()) + "): raise --memory");
  std::memcpy(dst, src, len);
  std::memset(dst + len, 0, zero_to - len);
}

/** Loads a bzImage's protected-mode part; returns the end and fills the header into `zp`. */
uint64_t load_bzimage(const LinuxBootInput& in, const GuestMemory& m, uint8_t* zp, uint64_t* entry) {
  const auto& f = *in.kernel;
  if (f.size() < 0x268) format_error(in, "truncated setup header");
  uint16_t version = get<uint16_t>(f.data(), kVersion);
  if (version < kMinBootProtocol)
    format_error(in, "boot protocol " + std::to_string(version >> 8) + "." + std::to_string(version & 0xFF) + " is too old (vmrun needs 2.12 or newer with a 64-bit entry)");
  if (!(get<uint16_t>(f.data(), kXLoadFlags) & kXlfKernel64)) format_error(in, "the bzImage has no 64-bit entry point (XLF_KERNEL_64 not set)");
  uint32_t setup_sects = f[kSetupSects] ? f[kSetupSects] : 4;
  uint64_t setup_size = (static_cast<uint64_t>(setup_sects) + 1) * 512;
  uint64_t syssize = static_cast<uint64_t>(get<uint32_t>(f.data(), kSysSize)) * 16;
  if (setup_size >= f.size()) format_error(in, "truncated (the file ends inside the setup code)");
  uint64_t payload = f.size() - setup_size;
  if (syssize > payload) format_error(in, "truncated (the header says " + std::to_string(syssize) + " bytes of kernel, the file has " + std::to_string(payload) + ")");

  // The header travels to the zero page as is: from 0x1F1 to the end the jump at 0x200 gives.
  size_t header_end = std::min<size_t>(0x202 + f[kJump + 1], kZeroPageSize);
  std::memcpy(zp + kSetupHeader, f.data() + kSetupHeader, header_end - kSetupHeader);

  const uint64_t load = x86::kHighMemoryStart;
  uint64_t init_size = get<uint32_t>(f.data(), kInitSize);
  uint64_t footprint = std::max(payload, init_size);
  copy_to_guest(m, load, f.data() + setup_size, payload, footprint, "kernel " + in.kernel_path);
  put<uint32_t>(zp, kCode32Start, static_cast<uint32_t>(load));
  *entry = load + kStartup64Offset;
  return load + footprint;
}

/** Loads a vmlinux ELF's PT_LOADs at their physical addresses and synthesizes a header. */
uint64_t load_elf(const LinuxBootInput& in, const GuestMemory& m, uint8_t* zp, uint64_t* entry) {
  Elf64File elf(*in.kernel, "kernel " + in.kernel_path);
  uint64_t end = 0;
  bool any = false, entry_found = false;
  uint64_t e = elf.header().e_entry;
  for (const auto& ph : elf.program_headers()) {
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    if (ph.p_filesz > ph.p_memsz) format_error(in, "a segment's file size exceeds its memory size");
    const uint8_t* src = elf.segment_bytes(ph);
    copy_to_guest(m, ph.p_paddr, src, ph.p_filesz, ph.p_memsz, "kernel " + in.kernel_path);
    end = std::max(end, ph.p_paddr + ph.p_memsz);
    any = true;
    // e_entry may be virtual (vmlinux linked high): translate it through its segment.
    if (!entry_found && e >= ph.p_vaddr && e - ph.p_vaddr < ph.p_memsz) {
      *entry = ph.p_paddr + (e - ph.p_vaddr);
      entry_found = true;
    }
  }
  if (!any) format_error(in, "the ELF file has no loadable segments");
  if (!entry_found) {
    if (!m.contains(e, 1)) format_error(in, "the entry point " + hex(e) + " is outside every segment");
    *entry = e;
  }
  put<uint16_t>(zp, kBootFlag, 0xAA55);
  std::memcpy(zp + kHeaderMagic, "HdrS", 4);
  put<uint16_t>(zp, kVersion, 0x020F);
  put<uint32_t>(zp, kKernelAlignment, 0x01000000);
  put<uint32_t>(zp, kCmdlineSize, kElfCmdlineLimit - 1);
  put<uint32_t>(zp, kInitrdAddrMax, kDefaultInitrdAddrMax);
  return end;
}

void write_e820(const GuestMemory& m, uint8_t* zp) {
  struct Entry { uint64_t addr, size; uint32_t type; };
  std::vector<Entry> map;
  for (const auto& r : m.regions()) {
    if (r.guest_address == 0) {
      map.push_back({0, std::min<uint64_t>(x86::kEbdaStart, r.size), kE820Ram});
      map.push_back({x86::kEbdaStart, 0xA0000 - x86::kEbdaStart, kE820Reserved});
      if (r.size > x86::kHighMemoryStart) map.push_back({x86::kHighMemoryStart, r.size - x86::kHighMemoryStart, kE820Ram});
    } else {
      map.push_back({r.guest_address, r.size, kE820Ram});
    }
  }
  put<uint8_t>(zp, kE820Entries, static_cast<uint8_t>(map.size()));
  for (size_t i = 0; i < map.size(); i++) {
    uint8_t* e = zp + kE820Table + i * kE820EntrySize;
    put<uint64_t>(e, 0, map[i].addr);
    put<uint64_t>(e, 8, map[i].size);
    put<uint32_t>(e, 16, map[i].type);
  }
}

uint64_t place_initrd(const LinuxBootInput& in, const GuestMemory& m, uint8_t* zp, uint64_t kernel_end) {
  const auto& rd = *in.initrd;
  uint64_t addr_max = get<uint32_t>(zp, kInitrdAddrMax);
  if (addr_max == 0) addr_max = kDefaultInitrdAddrMax;
  uint64_t low_ram_end = m.regions().front().size;
  uint64_t top = std::min<uint64_t>(addr_max + 1, low_ram_end);
  uint64_t size_pages = (rd.size() + 0xFFF) & ~0xFFFULL;
  if (size_pages + kernel_end > top)
    throw VmrunError(ErrorCode::Usage, "initrd " + in.initrd_path + " (" + std::to_string(rd.size() >> 20) + " MiB) does not fit in guest memory below " + hex(top) + " after the kernel: raise --memory");
  uint64_t addr = (top - size_pages) & ~0xFFFULL;
  copy_to_guest(m, addr, rd.data(), rd.size(), rd.size(), "initrd " + in.initrd_path);
  put<uint32_t>(zp, kRamdiskImage, static_cast<uint32_t>(addr));
  put<uint32_t>(zp, kRamdiskSize, static_cast<uint32_t>(rd.size()));
  put<uint32_t>(zp, kExtRamdiskImage, static_cast<uint32_t>(addr >> 32));
  put<uint32_t>(zp, kExtRamdiskSize, static_cast<uint32_t>(static_cast<uint64_t>(rd.size()) >> 32));
  return addr;
}

}  // namespace

LoadedLinux load_linux(const LinuxBootInput& in, const GuestMemory& m) {
  std::vector<uint8_t> zp(kZeroPageSize, 0);
  LoadedLinux out;
  uint64_t entry = 0;
  if (in.format == KernelFormat::LinuxBzImage) out.kernel_end = load_bzimage(in, m, zp.data(), &entry);
  else out.kernel_end = load_elf(in, m, zp.data(), &entry);

  put<uint8_t>(zp.data(), kTypeOfLoader, kLoaderTypeUndefined);
  put<uint8_t>(zp.data(), kLoadFlags, zp[kLoadFlags] | kLoadedHigh | kCanUseHeap);
  put<uint16_t>(zp.data(), kHeapEndPtr, 0xFE00);

  uint32_t cmdline_limit = get<uint32_t>(zp.data(), kCmdlineSize);
  if (cmdline_limit == 0) cmdline_limit = 255;  // protocols before 2.06
  if (in.cmdline.size() > cmdline_limit || in.cmdline.size() >= x86::kCmdlineMaxSize)
    throw VmrunError(ErrorCode::Usage, "--cmdline is " + std::to_string(in.cmdline.size()) + " bytes; this kernel accepts at most " + std::to_string(cmdline_limit));
  copy_to_guest(m, x86::kCmdlineAddress, reinterpret_cast<const uint8_t*>(in.cmdline.c_str()), in.cmdline.size() + 1, in.cmdline.size() + 1, "command line");
  put<uint32_t>(zp.data(), kCmdLinePtr, static_cast<uint32_t>(x86::kCmdlineAddress));
  put<uint32_t>(zp.data(), kExtCmdLinePtr, 0);

  if (in.initrd) out.initrd_address = place_initrd(in, m, zp.data(), out.kernel_end);
  write_e820(m, zp.data());
  if (!m.write(x86::kZeroPageAddress, zp.data(), zp.size())) throw VmrunError(ErrorCode::Usage, "guest memory is too small for the zero page");

  x86::write_linux_boot_gdt(m, out.start);
  x86::set_long_mode(out.start, x86::write_identity_page_tables(m));
  out.start.rip = entry;
  out.start.rsi = x86::kZeroPageAddress;
  out.start.rsp = x86::kBootStackPointer;
  out.start.rflags = 2;
  return out;
}

}  // namespace vmrun
