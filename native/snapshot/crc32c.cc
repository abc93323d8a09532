#include "snapshot/crc32c.h"

#include <cstring>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace vmrun {

namespace {

uint32_t table[256];

bool init_table() {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return true;
}

uint32_t crc32c_software(const uint8_t* p, size_t n, uint32_t crc) {
  static const bool ready = init_table();
  (void)ready;
  for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_hardware(const uint8_t* p, size_t n, uint32_t crc) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

}  // namespace

uint32_t crc32c(const void* data, size_t len, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  static const bool hardware = __builtin_cpu_supports("sse4.2");
  crc = hardware ? crc32c_hardware(p, len, crc) : crc32c_software(p, len, crc);
#else
  // Other architectures (the arm64 test driver checks only small state sections).
  crc = crc32c_software(p, len, crc);
#endif
  return ~crc;
}

}  // namespace vmrun
