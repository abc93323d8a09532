#include "loaders/linux/arm64_image.h"

#include <cstring>

#include "arch/aarch64/device_tree.h"
#include "common/error.h"
#include "common/hex.h"

namespace vmrun {

namespace {

constexpr size_t kHeaderSize = 64;
constexpr size_t kMagicOffset = 0x38;
constexpr uint32_t kMagic = 0x644D5241;  // "ARM\x64", little-endian
constexpr uint64_t kFlagBigEndian = 1;
constexpr uint64_t k2MiB = 2ULL << 20;
/** The device tree may be at most 2 MiB and must not cross a 2 MiB boundary. */
constexpr uint64_t kMaxDeviceTreeSize = k2MiB;

template <typename T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint64_t align_down(uint64_t v, uint64_t a) { return v & ~(a - 1); }
uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

}  // namespace

bool looks_like_arm64_image(const std::vector<uint8_t>& f) {
  return f.size() >= kHeaderSize && get<uint32_t>(f.data() + kMagicOffset) == kMagic;
}

Arm64ImageHeader parse_arm64_image(const std::vector<uint8_t>& f, const std::string& path) {
  auto fail = [&](const std::string& why) { return VmrunError(ErrorCode::KernelFormat, "kernel " + path + ": " + why); };
  if (!looks_like_arm64_image(f)) throw fail("not an arm64 Image (no \"ARM\\x64\" magic at offset 0x38)");
  Arm64ImageHeader h;
  h.text_offset = get<uint64_t>(f.data() + 0x08);
  h.image_size = get<uint64_t>(f.data() + 0x10);
  h.flags = get<uint64_t>(f.data() + 0x18);
  // image_size 0: a kernel older than 3.17, whose size in memory the header does not give.
  if (h.image_size == 0) throw fail("the Image header gives no image_size (a kernel older than Linux 3.17)");
  if (h.flags & kFlagBigEndian) throw fail("a big-endian kernel (vmrun runs little-endian arm64 guests)");
  if (h.text_offset >= k2MiB || h.text_offset % 4096 != 0) throw fail("text_offset " + hex(h.text_offset) + " is not a page offset inside 2 MiB");
  if (f.size() > h.image_size) throw fail("the file (" + std::to_string(f.size()) + " bytes) is larger than its image_size (" + std::to_string(h.image_size) + ")");
  return h;
}

LoadedArm64Linux load_arm64_linux(const Arm64LinuxBootInput& in, const GuestMemory& memory) {
  const Arm64ImageHeader h = parse_arm64_image(*in.kernel, in.kernel_path);
  if (memory.regions().size() != 1) throw VmrunError(ErrorCode::Internal, "the arm64 loader needs RAM as one region");
  const GuestRegion& ram = memory.regions().front();
  const uint64_t ram_end = ram.guest_address + ram.size;
  if (in.cmdline.size() + 1 > kArm64CmdlineMax)
    throw VmrunError(ErrorCode::Usage, "the kernel command line is " + std::to_string(in.cmdline.size()) + " bytes; arm64 Linux takes at most " + std::to_string(kArm64CmdlineMax - 1));

  LoadedArm64Linux out;
  // As low as possible: the kernel maps memory below its load address less well.
  out.kernel_address = align_up(ram.guest_address, k2MiB) + h.text_offset;
  out.kernel_end = out.kernel_address + h.image_size;
  // The tree in the last 2 MiB of RAM (RAM sizes are multiples of 2 MiB), the initrd below it.
  out.device_tree_address = align_down(ram_end, k2MiB) - kMaxDeviceTreeSize;
  const uint64_t initrd_size = in.initrd ? in.initrd->size() : 0;
  uint64_t initrd_floor = out.device_tree_address;
  if (initrd_size > 0) {
    if (initrd_size > out.device_tree_address - ram.guest_address) throw VmrunError(ErrorCode::Usage, "the initrd is larger than --memory");
    out.initrd_address = align_down(out.device_tree_address - initrd_size, 4096);
    initrd_floor = out.initrd_address;
  }
  if (out.device_tree_address < ram.guest_address || out.kernel_end > initrd_floor)
    throw VmrunError(ErrorCode::Usage, "--memory " + std::to_string(ram.size >> 20) + "M cannot hold the kernel (" + std::to_string(h.image_size >> 20) +
                                           " MiB in memory), the initrd (" + std::to_string(initrd_size >> 20) + " MiB) and the device tree; give it more memory");

  if (!memory.write(out.kernel_address, in.kernel->data(), in.kernel->size())) throw VmrunError(ErrorCode::Internal, "the kernel does not fit in RAM");
  if (initrd_size > 0 && !memory.write(out.initrd_address, in.initrd->data(), initrd_size))
    throw VmrunError(ErrorCode::Internal, "the initrd does not fit in RAM");

  aarch64::DeviceTreeConfig dt;
  dt.ram_base = ram.guest_address;
  dt.ram_size = ram.size;
  dt.cpus = in.cpus;
  dt.bootargs = in.cmdline;
  dt.initrd_start = out.initrd_address;
  dt.initrd_size = initrd_size;
  dt.virtio_slots = in.virtio_slots;
  const std::vector<uint8_t> tree = aarch64::build_device_tree(dt);
  if (tree.size() > kMaxDeviceTreeSize) throw VmrunError(ErrorCode::Usage, "the device tree is larger than 2 MiB (command line too long?)");
  if (!memory.write(out.device_tree_address, tree.data(), tree.size())) throw VmrunError(ErrorCode::Internal, "the device tree does not fit in RAM");

  out.start.pc = out.kernel_address;
  out.start.x0 = out.device_tree_address;
  return out;
}

}  // namespace vmrun
