// The arm64 boot path without KVM: the Image header checks, where the loader puts the
// kernel, initrd and device tree, and the device tree itself, read back node by node
// with a small DTB reader (the kernel reads it the same way).
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "arch/aarch64/device_tree.h"
#include "arch/aarch64/layout.h"
#include "check.h"
#include "loaders/kernel_format.h"
#include "loaders/linux/arm64_image.h"

using namespace vmrun;

namespace {

uint32_t be32(const uint8_t* p) { return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]; }

/** Every property of a DTB as "/path/to/node:name" -> raw value. */
std::map<std::string, std::vector<uint8_t>> read_tree(const std::vector<uint8_t>& dtb) {
  std::map<std::string, std::vector<uint8_t>> props;
  CHECK_EQ(be32(dtb.data()), 0xD00DFEEDu);
  const uint32_t structure = be32(&dtb[8]), strings = be32(&dtb[12]);
  std::vector<std::string> path;
  for (size_t at = structure;;) {
    const uint32_t token = be32(&dtb[at]);
    at += 4;
    if (token == 1) {  // FDT_BEGIN_NODE
      std::string name(reinterpret_cast<const char*>(&dtb[at]));
      path.push_back(name);
      at = (at + name.size() + 1 + 3) & ~size_t{3};
    } else if (token == 2) {  // FDT_END_NODE
      path.pop_back();
    } else if (token == 3) {  // FDT_PROP
      const uint32_t len = be32(&dtb[at]), name_offset = be32(&dtb[at + 4]);
      std::string node;
      for (size_t i = 1; i < path.size(); i++) node += "/" + path[i];
      props[(node.empty() ? "/" : node) + ":" + reinterpret_cast<const char*>(&dtb[strings + name_offset])] =
          std::vector<uint8_t>(dtb.begin() + static_cast<long>(at + 8), dtb.begin() + static_cast<long>(at + 8 + len));
      at = (at + 8 + len + 3) & ~size_t{3};
    } else if (token == 9) {  // FDT_END
      break;
    } else if (token != 4) {  // FDT_NOP
      check::fail(__FILE__, __LINE__, "bad DTB token");
      break;
    }
  }
  return props;
}

std::vector<uint32_t> cells(const std::vector<uint8_t>& v) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i + 4 <= v.size(); i += 4) out.push_back(be32(&v[i]));
  return out;
}

std::string text(const std::vector<uint8_t>& v) { return v.empty() ? "" : std::string(v.begin(), v.end() - 1); }

/** A fake arm64 Image: the 64-byte header, then filler up to `file_size`. */
std::vector<uint8_t> fake_image(uint64_t text_offset, uint64_t image_size, uint64_t flags, size_t file_size = 4096) {
  std::vector<uint8_t> f(file_size, 0xA5);
  auto put64 = [&](size_t at, uint64_t v) { std::memcpy(&f[at], &v, 8); };
  put64(0x08, text_offset);
  put64(0x10, image_size);
  put64(0x18, flags);
  const uint32_t magic = 0x644D5241;
  std::memcpy(&f[0x38], &magic, 4);
  return f;
}

}  // namespace

TEST("arm64 device tree: cpus with PSCI, GICv3 sized for the vCPUs, timer PPIs, 16550, exit device, virtio slots, chosen") {
  aarch64::DeviceTreeConfig c;
  c.ram_base = aarch64::kRamBase;
  c.ram_size = 256ULL << 20;
  c.cpus = 2;
  c.bootargs = "console=ttyS0 quiet";
  c.initrd_start = 0x4F00'0000;
  c.initrd_size = 0x1234;
  c.virtio_slots = 1;
  auto p = read_tree(aarch64::build_device_tree(c));
  CHECK_EQ(text(p["/chosen:bootargs"]), std::string("console=ttyS0 quiet"));
  CHECK_EQ(text(p["/chosen:stdout-path"]), std::string("/uart@9000000"));
  CHECK(cells(p["/chosen:linux,initrd-start"]) == (std::vector<uint32_t>{0, 0x4F00'0000}));
  CHECK(cells(p["/chosen:linux,initrd-end"]) == (std::vector<uint32_t>{0, 0x4F00'1234}));
  CHECK(cells(p["/memory@40000000:reg"]) == (std::vector<uint32_t>{0, 0x4000'0000, 0, 0x1000'0000}));
  CHECK_EQ(text(p["/cpus/cpu@1:enable-method"]), std::string("psci"));
  CHECK(cells(p["/cpus/cpu@1:reg"]) == std::vector<uint32_t>{1});
  CHECK(p.count("/cpus/cpu@2:reg") == 0);
  CHECK_EQ(text(p["/psci:method"]), std::string("hvc"));
  CHECK_EQ(text(p["/intc@8000000:compatible"]), std::string("arm,gic-v3"));
  // Distributor, then one redistributor pair of frames (128 KiB) per vCPU.
  CHECK(cells(p["/intc@8000000:reg"]) == (std::vector<uint32_t>{0, 0x0800'0000, 0, 0x1'0000, 0, 0x080A'0000, 0, 0x4'0000}));
  CHECK(p.count("/intc@8000000:interrupt-controller") == 1);
  // Secure and non-secure physical, virtual, hypervisor timers: PPIs 13, 14, 11, 10.
  CHECK(cells(p["/timer:interrupts"]) == (std::vector<uint32_t>{1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4}));
  CHECK_EQ(text(p["/uart@9000000:compatible"]), std::string("ns16550a"));
  CHECK(cells(p["/uart@9000000:interrupts"]) == (std::vector<uint32_t>{0, aarch64::kUartSpi, 4}));
  CHECK(cells(p["/uart@9000000:clock-frequency"]) == std::vector<uint32_t>{aarch64::kUartClockHz});
  CHECK_EQ(text(p["/exit@9010000:compatible"]), std::string("vmrun,exit-device"));
  CHECK(cells(p["/exit@9010000:reg"]) == (std::vector<uint32_t>{0, 0x0901'0000, 0, 0x1000}));
  CHECK(cells(p["/virtio_mmio@a000000:interrupts"]) == (std::vector<uint32_t>{0, aarch64::kVirtioMmioFirstSpi, 1}));
  CHECK(p.count("/virtio_mmio@a000200:reg") == 0);
  CHECK(cells(p["/:interrupt-parent"]) == cells(p["/intc@8000000:phandle"]));
}

TEST("arm64 device tree: refuses more vCPUs than the redistributor window holds") {
  aarch64::DeviceTreeConfig c;
  c.ram_base = aarch64::kRamBase;
  c.ram_size = 64ULL << 20;
  c.cpus = aarch64::kMaxCpus + 1;
  CHECK_THROWS(aarch64::build_device_tree(c), "--cpus 124 is out of range (1-123)");
}

TEST("arm64 Image: detected from its magic and loaded at RAM base + text_offset, initrd and tree at the top") {
  const auto kernel = fake_image(0x8'0000, 3ULL << 20, 0b1010);
  CHECK(detect_kernel_format(kernel, nullptr) == KernelFormat::LinuxArm64Image);
  CHECK_EQ(std::string(kernel_format_name(KernelFormat::LinuxArm64Image)), std::string("linux-arm64-image"));
  GuestMemory memory = GuestMemory::anonymous_at(aarch64::kRamBase, 64ULL << 20);
  const std::vector<uint8_t> initrd(10000, 0x5A);
  Arm64LinuxBootInput in{&kernel, "Image", &initrd, "console=ttyS0", 2, 0};
  const LoadedArm64Linux out = load_arm64_linux(in, memory);
  CHECK_EQ(out.kernel_address, aarch64::kRamBase + 0x8'0000);
  CHECK_EQ(out.kernel_end, out.kernel_address + (3ULL << 20));
  CHECK_EQ(out.device_tree_address, aarch64::kRamBase + (62ULL << 20));
  CHECK_EQ(out.initrd_address % 4096, 0u);
  CHECK(out.initrd_address + initrd.size() <= out.device_tree_address);
  CHECK_EQ(out.start.pc, out.kernel_address);
  CHECK_EQ(out.start.x0, out.device_tree_address);
  CHECK(std::memcmp(memory.range(out.kernel_address, kernel.size()), kernel.data(), kernel.size()) == 0);
  CHECK(std::memcmp(memory.range(out.initrd_address, initrd.size()), initrd.data(), initrd.size()) == 0);
  std::vector<uint8_t> tree(memory.range(out.device_tree_address, 2ULL << 20), memory.range(out.device_tree_address, 2ULL << 20) + (2ULL << 20));
  auto p = read_tree(tree);
  CHECK(cells(p["/chosen:linux,initrd-start"]) == (std::vector<uint32_t>{0, static_cast<uint32_t>(out.initrd_address)}));
}

TEST("arm64 Image: header and size errors name the kernel and the problem") {
  GuestMemory memory = GuestMemory::anonymous_at(aarch64::kRamBase, 16ULL << 20);
  auto load = [&](const std::vector<uint8_t>& kernel) {
    Arm64LinuxBootInput in{&kernel, "k.img", nullptr, "", 1, 0};
    load_arm64_linux(in, memory);
  };
  std::vector<uint8_t> no_magic(4096, 0);
  CHECK_THROWS(load(no_magic), "kernel k.img: not an arm64 Image");
  CHECK_THROWS(load(fake_image(0, 0, 0)), "no image_size (a kernel older than Linux 3.17)");
  CHECK_THROWS(load(fake_image(0, 1 << 20, 1)), "big-endian");
  CHECK_THROWS(load(fake_image(0x123, 1 << 20, 0)), "text_offset 0x123");
  CHECK_THROWS(load(fake_image(0, 4096, 0, 8192)), "larger than its image_size");
  CHECK_THROWS(load(fake_image(0, 15ULL << 20, 0)), "give it more memory");
  const auto fits = fake_image(0, 1 << 20, 0);
  std::string long_line(kArm64CmdlineMax, 'x');
  Arm64LinuxBootInput in{&fits, "k.img", nullptr, long_line, 1, 0};
  CHECK_THROWS(load_arm64_linux(in, memory), "arm64 Linux takes at most 2047");
}
