// Guest RAM's host mapping: where it starts (2 MiB aligned, so host huge pages can back
// guest-physical 2 MiB ranges whole) and the inaccessible guard page on each side.
#include <fstream>
#include <sstream>
#include <string>

#include "check.h"
#include "memory/guest_memory.h"

using namespace vmrun;

namespace {

/** The permissions of the mapping of this process that holds `address` ("" if none). */
std::string permissions_at(uint64_t address) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms;
    in >> range >> perms;
    const auto dash = range.find('-');
    const uint64_t from = std::stoull(range.substr(0, dash), nullptr, 16), to = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (address >= from && address < to) return perms;
  }
  return "";
}

void check_layout(const GuestMemory& m) {
  const uint64_t base = reinterpret_cast<uint64_t>(m.host_base());
  CHECK_EQ(base % (2ULL << 20), uint64_t{0});
  CHECK_EQ(permissions_at(base).substr(0, 3), std::string("rw-"));
  CHECK_EQ(permissions_at(base + m.ram_size() - 1).substr(0, 3), std::string("rw-"));
  CHECK_EQ(permissions_at(base - 1).substr(0, 3), std::string("---"));
  CHECK_EQ(permissions_at(base + m.ram_size()).substr(0, 3), std::string("---"));
}

}  // namespace

TEST("guest memory: RAM starts on a 2 MiB boundary of the host, between two inaccessible guard pages") {
  for (uint64_t size : {1ULL << 20, (16ULL << 20) + 4096, 64ULL << 20}) {
    GuestMemory m = GuestMemory::anonymous(size);
    check_layout(m);
    // Every byte is usable, the first and the last.
    m.host_base()[0] = 1;
    m.host_base()[size - 1] = 2;
    CHECK(m.range(0, size) == m.host_base());
  }
  GuestMemory shared = GuestMemory::shared(8ULL << 20);
  check_layout(shared);
}

TEST("guest memory: freeing it leaves nothing of its reservation mapped") {
  uint64_t base;
  uint64_t size = 32ULL << 20;
  {
    GuestMemory m = GuestMemory::anonymous(size);
    base = reinterpret_cast<uint64_t>(m.host_base());
  }
  CHECK_EQ(permissions_at(base), std::string(""));
  CHECK_EQ(permissions_at(base - 1), std::string(""));
  CHECK_EQ(permissions_at(base + size), std::string(""));
}
