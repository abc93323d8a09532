// The device tree uhyve gives Hermit kernels: root "hermit,uhyve", the memory node,
// the TSC frequency, the file-mapping mount points and /chosen/bootargs
// ("KERNEL_ARGS -- APP_ARGS", environment as env=K=V kernel arguments).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vmrun::hermit {

struct DeviceTreeInput {
  uint64_t ram_start = 0, ram_end = 0;
  uint32_t tsc_khz = 0;  // 0: no /hermit,tsc node
  std::vector<std::string> mounts;
  std::vector<std::string> env;       // "K=V"
  std::vector<std::string> app_args;  // without argv[0]
};

/** The bootargs string: env=K=V ... -- arg ..., each word quoted for the kernel's shell-style split. */
std::string bootargs(const std::vector<std::string>& env, const std::vector<std::string>& app_args);

/** The DTB blob. */
std::vector<uint8_t> build_device_tree(const DeviceTreeInput& input);

/** Quotes a word so a POSIX-shell-style split gives it back unchanged. */
std::string shell_quote(const std::string& word);

}  // namespace vmrun::hermit
