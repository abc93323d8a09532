// Fuzz target: a kernel file as vmrun boot reads it. The format is detected from the
// bytes; a Linux kernel (bzImage or ELF) is loaded into a small guest RAM with a
// command line, a Hermit ELF is inspected and loaded at a fixed address.
#include "common/error.h"
#include "loaders/elf64.h"
#include "loaders/hermit/hermit_image.h"
#include "loaders/kernel_format.h"
#include "loaders/linux/linux_loader.h"
#include "memory/guest_memory.h"
#include "targets.h"

namespace vmrun::fuzz {

void kernel_loaders(const uint8_t* data, size_t size) {
  // One guest RAM for every input: mapping 64 MiB per input would dominate the run.
  static GuestMemory memory = GuestMemory::anonymous(64ULL << 20);
  const std::vector<uint8_t> file(data, data + size);
  std::string why;
  KernelFormat format = detect_kernel_format(file, &why);
  try {
    if (format == KernelFormat::LinuxBzImage || format == KernelFormat::LinuxElf) {
      static const std::vector<uint8_t> initrd(4096, 0x5A);
      LinuxBootInput input{&file, format, "fuzz-kernel", &initrd, "fuzz-initrd", "console=ttyS0"};
      load_linux(input, memory);
    } else if (format == KernelFormat::HermitElf) {
      Elf64File elf(file, "fuzz-kernel");
      hermit::HermitImage image = hermit::inspect_hermit_image(elf);
      uint64_t base = image.position_independent ? 0x200000 : image.first_vaddr;
      hermit::load_hermit_image(elf, image, base, memory);
    } else if (Elf64File::looks_like_elf64(file)) {
      Elf64File elf(file, "fuzz-kernel");
      elf.for_each_note([](const std::string&, uint32_t, const uint8_t*, size_t) {});
    }
  } catch (const VmrunError&) {
  }
}

}  // namespace vmrun::fuzz

VMRUN_FUZZ_ENTRY(kernel_loaders)
