#include "loaders/kernel_format.h"

#include <cstring>

#include "loaders/elf64.h"
#include "loaders/linux/arm64_image.h"

namespace vmrun {

static bool has_hermit_note(const std::vector<uint8_t>& file) {
  try {
    Elf64File elf(file, "kernel");
    bool found = false;
    elf.for_each_note([&](const std::string& name, uint32_t type, const uint8_t*, size_t) {
      if (name == "HERMIT" && type == 0x5a00) found = true;
    });
    return found;
  } catch (...) {
    return false;  // the Linux ELF loader reports the precise problem
  }
}

KernelFormat detect_kernel_format(const std::vector<uint8_t>& f, std::string* why) {
  if (Elf64File::looks_like_elf64(f)) return has_hermit_note(f) ? KernelFormat::HermitElf : KernelFormat::LinuxElf;
  if (f.size() >= 0x206 && f[0x1FE] == 0x55 && f[0x1FF] == 0xAA && std::memcmp(&f[0x202], "HdrS", 4) == 0)
    return KernelFormat::LinuxBzImage;
  if (looks_like_arm64_image(f)) return KernelFormat::LinuxArm64Image;
  if (why) {
    if (f.size() < 0x206) *why = "too short to be a kernel (" + std::to_string(f.size()) + " bytes)";
    else *why = "neither an ELF file nor a bzImage (no ELF magic, no \"HdrS\" setup header) nor an arm64 Image";
  }
  return KernelFormat::Unknown;
}

const char* kernel_format_name(KernelFormat f) {
  switch (f) {
    case KernelFormat::LinuxBzImage: return "linux-bzimage";
    case KernelFormat::LinuxElf: return "linux-elf";
    case KernelFormat::HermitElf: return "hermit";
    case KernelFormat::LinuxArm64Image: return "linux-arm64-image";
    case KernelFormat::Unknown: return "unknown";
  }
  return "unknown";
}

}  // namespace vmrun
