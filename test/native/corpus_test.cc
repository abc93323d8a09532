// Replays every committed fuzz input (fuzz/corpus/<target>/: seeds, and each crash a
// fuzzer once found) through the same target function the fuzzer runs. A crash that
// comes back aborts this executable, and npm test fails with its output.
#include <filesystem>
#include <fstream>
#include <iterator>

#include "check.h"
#include "targets.h"

namespace {

using Target = void (*)(const uint8_t*, size_t);

/** Runs `target` on every file of its corpus directory; returns how many there were. */
size_t replay(const char* name, Target target) {
  std::filesystem::path dir = std::filesystem::path(VMRUN_FUZZ_CORPUS) / name;
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    target(bytes.data(), bytes.size());
    n++;
  }
  return n;
}

}  // namespace

TEST("fuzz corpus: state codecs") { CHECK(replay("state_codecs", vmrun::fuzz::state_codecs) > 0); }
TEST("fuzz corpus: kernel loaders") { CHECK(replay("kernel_loaders", vmrun::fuzz::kernel_loaders) > 0); }
TEST("fuzz corpus: uhyve hypercalls") { CHECK(replay("uhyve_hypercalls", vmrun::fuzz::uhyve_hypercalls) > 0); }
TEST("fuzz corpus: memory index") { CHECK(replay("memory_index", vmrun::fuzz::memory_index) > 0); }
TEST("fuzz corpus: gdb packets") { CHECK(replay("gdb_packets", vmrun::fuzz::gdb_packets) > 0); }
TEST("fuzz corpus: virtio-net receive rings") { CHECK(replay("virtio_net_rx", vmrun::fuzz::virtio_net_rx) > 0); }
