#include "loaders/hermit/hermit_image.h"

#include <cstring>

#include "common/error.h"
#include "common/hex.h"

namespace vmrun::hermit {

namespace {

constexpr uint32_t kHermitEntryNote = 0x5a00;
constexpr uint32_t kUhyveInterfaceNote = 0x5b00;
constexpr uint32_t kGnuAbiTagNote = 1;
constexpr uint32_t kGnuAbiOsHermit = 6;
constexpr uint32_t kMaxInterfaceVersion = 2;

const char* entry_version_release(uint8_t v) {
  switch (v) {
    case 2: return " (hermit-entry 0.9.0-0.9.2)";
    case 3: return " (hermit-entry 0.9.3-0.9.10)";
    case 4: return " (hermit-entry 0.10.x)";
    default: return "";
  }
}

[[noreturn]] void fail(const Elf64File& elf, const std::string& why) {
  throw VmrunError(ErrorCode::KernelFormat, elf.what() + ": " + why);
}

/** The dynamic-section entries the loader uses. */
struct DynamicInfo {
  uint64_t rela = 0, rela_size = 0, rela_entry = sizeof(Elf64_Rela), symtab = 0, sym_entry = sizeof(Elf64_Sym);
  bool has_rela = false;
};

DynamicInfo read_dynamic(const Elf64File& elf) {
  DynamicInfo info;
  for (const auto& ph : elf.program_headers()) {
    if (ph.p_type != PT_DYNAMIC) continue;
    const uint8_t* p = elf.segment_bytes(ph);
    for (size_t off = 0; off + sizeof(Elf64_Dyn) <= ph.p_filesz; off += sizeof(Elf64_Dyn)) {
      Elf64_Dyn d;
      std::memcpy(&d, p + off, sizeof d);
      switch (d.d_tag) {
        case DT_NULL: return info;
        case DT_NEEDED: fail(elf, "it needs shared libraries (DT_NEEDED); a Hermit kernel must be linked statically");
        case DT_REL: fail(elf, "it has DT_REL relocations; Hermit kernels use DT_RELA only");
        case DT_RELA: info.rela = d.d_un.d_ptr; info.has_rela = true; break;
        case DT_RELASZ: info.rela_size = d.d_un.d_val; break;
        case DT_RELAENT: info.rela_entry = d.d_un.d_val; break;
        case DT_SYMTAB: info.symtab = d.d_un.d_ptr; break;
        case DT_SYMENT: info.sym_entry = d.d_un.d_val; break;
        default: break;
      }
    }
  }
  return info;
}

void apply_relocations(const Elf64File& elf, const DynamicInfo& dyn, uint64_t bias, const LoadedKernel& k, const GuestMemory& m) {
  if (!dyn.has_rela || dyn.rela_size == 0) return;
  if (dyn.rela_entry != sizeof(Elf64_Rela)) fail(elf, "unexpected DT_RELAENT " + std::to_string(dyn.rela_entry));
  if (dyn.sym_entry != sizeof(Elf64_Sym)) fail(elf, "unexpected DT_SYMENT " + std::to_string(dyn.sym_entry));
  // The table is read from the loaded image, so it must lie inside it.
  uint64_t table = dyn.rela + bias;
  if (table < k.start || dyn.rela_size > k.end - k.start || table - k.start > k.end - k.start - dyn.rela_size)
    fail(elf, "the relocation table lies outside the loaded image");
  for (uint64_t off = 0; off + sizeof(Elf64_Rela) <= dyn.rela_size; off += sizeof(Elf64_Rela)) {
    Elf64_Rela r = *m.read_obj<Elf64_Rela>(table + off);
    uint32_t type = ELF64_R_TYPE(r.r_info);
    if (type == R_X86_64_NONE) continue;
    uint64_t target = r.r_offset + bias;
    if (target < k.start || target > k.end - 8) fail(elf, "a relocation targets " + hex(r.r_offset) + ", outside the image");
    uint64_t value;
    if (type == R_X86_64_RELATIVE) {
      value = bias + static_cast<uint64_t>(r.r_addend);
    } else if (type == R_X86_64_64 || type == R_X86_64_GLOB_DAT) {
      uint64_t sym_address = dyn.symtab + bias + ELF64_R_SYM(r.r_info) * sizeof(Elf64_Sym);
      auto sym = m.read_obj<Elf64_Sym>(sym_address);
      if (!dyn.symtab || !sym || sym_address < k.start || sym_address > k.end - sizeof(Elf64_Sym))
        fail(elf, "a relocation names a symbol outside the symbol table");
      if (sym->st_shndx == SHN_UNDEF) {
        if (ELF64_ST_BIND(sym->st_info) == STB_WEAK) continue;  // weak and undefined: stays 0
        fail(elf, "a relocation needs an undefined symbol; a Hermit kernel must be self-contained");
      }
      value = bias + sym->st_value + static_cast<uint64_t>(r.r_addend);
    } else {
      fail(elf, "unsupported relocation type " + std::to_string(type) + " (vmrun applies RELATIVE, 64 and GLOB_DAT)");
    }
    m.write_obj<uint64_t>(target, value);
  }
}

}  // namespace

HermitImage inspect_hermit_image(const Elf64File& elf) {
  HermitImage image;
  bool has_entry_note = false;
  elf.for_each_note([&](const std::string& name, uint32_t type, const uint8_t* desc, size_t size) {
    if (name == "HERMIT" && type == kHermitEntryNote && size >= 1) {
      has_entry_note = true;
      image.notes.entry_version = desc[0];
    } else if (name == "UHYVEIF" && type == kUhyveInterfaceNote && size >= 4) {
      image.notes.interface_version = (uint32_t{desc[0]} << 24) | (uint32_t{desc[1]} << 16) | (uint32_t{desc[2]} << 8) | desc[3];
    } else if (name == "GNU" && type == kGnuAbiTagNote && size >= 16) {
      uint32_t words[4];
      std::memcpy(words, desc, sizeof words);
      if (words[0] == kGnuAbiOsHermit) {
        image.notes.has_hermit_version = true;
        image.notes.major = words[1];
        image.notes.minor = words[2];
        image.notes.patch = words[3];
      }
    }
  });
  if (!has_entry_note) fail(elf, "no HERMIT note (type 0x5a00): not a Hermit kernel");
  uint8_t v = image.notes.entry_version;
  if (v < kMinEntryVersion || v > kMaxEntryVersion)
    fail(elf, "Hermit entry version " + std::to_string(v) + entry_version_release(v) +
                  " is not supported; vmrun boots entry versions 2 to 4 (hermit-entry 0.9.x and 0.10.x)");
  if (image.notes.interface_version < 1 || image.notes.interface_version > kMaxInterfaceVersion)
    fail(elf, "uhyve interface version " + std::to_string(image.notes.interface_version) +
                  " (UHYVEIF note) is not supported; vmrun serves versions 1 and 2");

  uint16_t type = elf.header().e_type;
  if (type != ET_DYN && type != ET_EXEC) fail(elf, "ELF type " + std::to_string(type) + " is neither ET_EXEC nor ET_DYN");
  image.position_independent = type == ET_DYN;

  bool first = true;
  uint64_t end = 0;
  for (const auto& ph : elf.program_headers()) {
    if (ph.p_type != PT_LOAD) continue;
    elf.segment_bytes(ph);  // bounds check
    if (ph.p_filesz > ph.p_memsz) fail(elf, "a PT_LOAD segment's file size exceeds its memory size");
    if (ph.p_vaddr + ph.p_memsz < ph.p_vaddr) fail(elf, "a PT_LOAD segment wraps around the address space");
    if (first) {
      image.first_vaddr = ph.p_vaddr;
      first = false;
    }
    if (ph.p_vaddr < image.first_vaddr) fail(elf, "PT_LOAD segments are not in ascending address order");
    end = std::max(end, ph.p_vaddr + ph.p_memsz);
    if (ph.p_align > image.alignment) image.alignment = ph.p_align;
  }
  if (first) fail(elf, "no PT_LOAD segment");
  image.mem_size = end - image.first_vaddr;
  if ((image.alignment & (image.alignment - 1)) != 0) fail(elf, "PT_LOAD alignment " + hex(image.alignment) + " is not a power of two");
  uint64_t entry = elf.header().e_entry;
  if (entry < image.first_vaddr || entry >= end) fail(elf, "the entry point " + hex(entry) + " lies outside the loaded segments");
  read_dynamic(elf);  // refuse DT_NEEDED / DT_REL before anything is loaded
  return image;
}

LoadedKernel load_hermit_image(const Elf64File& elf, const HermitImage& image, uint64_t load_address, const GuestMemory& m) {
  const uint64_t bias = load_address - image.first_vaddr;  // 0 for ET_EXEC
  LoadedKernel k;
  k.start = load_address;
  k.end = load_address + image.mem_size;
  k.entry = elf.header().e_entry + bias;
  if (!m.contains(k.start, image.mem_size))
    fail(elf, "the kernel (" + hex(k.start) + "-" + hex(k.end) + ") does not fit in guest RAM; give the guest more --memory");
  for (const auto& ph : elf.program_headers()) {
    if (ph.p_type == PT_TLS) k.tls = {ph.p_vaddr + bias, ph.p_filesz, ph.p_memsz, ph.p_align};
    if (ph.p_type != PT_LOAD) continue;
    uint64_t dest = ph.p_vaddr + bias;
    uint8_t* host = m.range(dest, ph.p_memsz);
    if (!host) fail(elf, "a segment at " + hex(dest) + " does not fit in guest RAM");
    std::memcpy(host, elf.segment_bytes(ph), ph.p_filesz);
    std::memset(host + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
  }
  if (image.position_independent) apply_relocations(elf, read_dynamic(elf), bias, k, m);
  return k;
}

}  // namespace vmrun::hermit
