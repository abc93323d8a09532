// Bounds-checked views of a little-endian ELF64 file: the header, program headers and
// notes. Every offset and size is checked against the file before it is used.
#pragma once
#include <elf.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vmrun {

class Elf64File {
 public:
  /** Validates the identification, header and program header table; throws KernelFormat errors. */
  Elf64File(const std::vector<uint8_t>& bytes, std::string what);
  static bool looks_like_elf64(const std::vector<uint8_t>& bytes);

  const Elf64_Ehdr& header() const { return header_; }
  const std::vector<Elf64_Phdr>& program_headers() const { return phdrs_; }
  /** The file bytes of a segment; throws if they lie outside the file. */
  const uint8_t* segment_bytes(const Elf64_Phdr& ph) const;
  /** Calls `visit(name, type, desc, desc_size)` for each note of each PT_NOTE segment. */
  void for_each_note(const std::function<void(const std::string&, uint32_t, const uint8_t*, size_t)>& visit) const;
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  const std::string& what() const { return what_; }

 private:
  const std::vector<uint8_t>& bytes_;
  std::string what_;
  Elf64_Ehdr header_{};
  std::vector<Elf64_Phdr> phdrs_;
};

}  // namespace vmrun
