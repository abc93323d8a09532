#include "loaders/hermit/boot_info.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "common/error.h"
#include "loaders/hermit/hermit_layout.h"

namespace vmrun::hermit {

namespace {
/** The fields every layout has, filled the same way. */
template <typename Raw>
Raw fill_boot_info(const LoadedKernel& k, const BootInfoInput& in) {
  Raw info{};
  info.phys_addr_start = 0;
  info.phys_addr_end = in.ram_end;
  info.serial_port_base = in.serial_port_base;
  info.kernel_image_start = k.start;
  info.kernel_image_end = k.end;
  info.tls_start = k.tls.start;
  info.tls_filesz = k.tls.filesz;
  info.tls_memsz = k.tls.memsz;
  info.tls_align = k.tls.align;
  info.platform = kPlatformUhyve;
  info.has_pci = 0;
  info.num_cpus = static_cast<uint64_t>(in.num_cpus);
  info.cpu_freq_khz = in.cpu_freq_khz;
  // i128 little-endian: the low 8 bytes, then the sign extension.
  int64_t t = in.boot_time_ns;
  std::memcpy(info.boot_time_ns, &t, 8);
  std::memset(info.boot_time_ns + 8, t < 0 ? 0xFF : 0, 8);
  return info;
}
}  // namespace

void write_boot_info(const GuestMemory& m, const LoadedKernel& k, const BootInfoInput& in, uint8_t entry_version) {
  bool written;
  if (entry_version == 2) {
    written = m.write_obj(kBootInfoAddress, fill_boot_info<RawBootInfoV2>(k, in));  // no device tree field
  } else {
    RawBootInfo info = fill_boot_info<RawBootInfo>(k, in);
    info.device_tree = in.device_tree;
    written = m.write_obj(kBootInfoAddress, info);
  }
  if (!written) throw VmrunError(ErrorCode::Usage, "guest memory is too small for the Hermit boot info");
}

uint32_t host_cpu_khz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cpu MHz", 0) != 0) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) return 0;
    double mhz = std::strtod(line.c_str() + colon + 1, nullptr);
    return mhz > 0 && mhz < 100000 ? static_cast<uint32_t>(mhz * 1000) : 0;
  }
  return 0;
}

}  // namespace vmrun::hermit
