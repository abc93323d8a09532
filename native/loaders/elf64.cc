#include "loaders/elf64.h"

#include <cstring>

#include "common/error.h"

namespace vmrun {

bool Elf64File::looks_like_elf64(const std::vector<uint8_t>& b) {
  return b.size() >= EI_NIDENT && std::memcmp(b.data(), ELFMAG, SELFMAG) == 0;
}

Elf64File::Elf64File(const std::vector<uint8_t>& bytes, std::string what) : bytes_(bytes), what_(std::move(what)) {
  auto fail = [&](const std::string& why) { throw VmrunError(ErrorCode::KernelFormat, what_ + ": " + why); };
  if (bytes.size() < sizeof(Elf64_Ehdr)) fail("truncated ELF header");
  std::memcpy(&header_, bytes.data(), sizeof header_);
  if (header_.e_ident[EI_CLASS] != ELFCLASS64) fail("not a 64-bit ELF file");
  if (header_.e_ident[EI_DATA] != ELFDATA2LSB) fail("not a little-endian ELF file");
  if (header_.e_machine != EM_X86_64) fail("ELF machine " + std::to_string(header_.e_machine) + " is not x86_64");
  if (header_.e_phentsize != sizeof(Elf64_Phdr)) fail("unexpected program header size");
  if (header_.e_phnum == 0 || header_.e_phnum > 256) fail("bad program header count " + std::to_string(header_.e_phnum));
  uint64_t table_end = header_.e_phoff + static_cast<uint64_t>(header_.e_phnum) * sizeof(Elf64_Phdr);
  if (header_.e_phoff > bytes.size() || table_end > bytes.size()) fail("truncated program header table");
  phdrs_.resize(header_.e_phnum);
  std::memcpy(phdrs_.data(), bytes.data() + header_.e_phoff, header_.e_phnum * sizeof(Elf64_Phdr));
}

const uint8_t* Elf64File::segment_bytes(const Elf64_Phdr& ph) const {
  if (ph.p_offset > bytes_.size() || ph.p_filesz > bytes_.size() - ph.p_offset)
    throw VmrunError(ErrorCode::KernelFormat, what_ + ": truncated (a segment extends past the end of the file)");
  return bytes_.data() + ph.p_offset;
}

void Elf64File::for_each_note(const std::function<void(const std::string&, uint32_t, const uint8_t*, size_t)>& visit) const {
  for (const auto& ph : phdrs_) {
    if (ph.p_type != PT_NOTE) continue;
    const uint8_t* p = segment_bytes(ph);
    size_t left = ph.p_filesz;
    auto align4 = [](size_t v) { return (v + 3) & ~size_t{3}; };
    while (left >= sizeof(Elf64_Nhdr)) {
      Elf64_Nhdr nh;
      std::memcpy(&nh, p, sizeof nh);
      size_t name_space = align4(nh.n_namesz), desc_space = align4(nh.n_descsz);
      if (name_space > left - sizeof nh || desc_space > left - sizeof nh - name_space) break;  // malformed: stop
      const char* name = reinterpret_cast<const char*>(p + sizeof nh);
      std::string n(name, nh.n_namesz > 0 ? strnlen(name, nh.n_namesz) : 0);
      visit(n, nh.n_type, p + sizeof nh + name_space, nh.n_descsz);
      size_t step = sizeof nh + name_space + desc_space;
      p += step;
      left -= step;
    }
  }
}

}  // namespace vmrun
