#include "arch/x86_64/cpu_state.h"

namespace vmrun::x86 {

Segment segment_from_descriptor(uint64_t d, uint16_t selector) {
  Segment s;
  s.base = ((d >> 16) & 0xFFFFFF) | (((d >> 56) & 0xFF) << 24);
  uint32_t limit = static_cast<uint32_t>((d & 0xFFFF) | (((d >> 48) & 0xF) << 16));
  s.g = (d >> 55) & 1;
  // With G set the limit counts 4 KiB pages: the cached limit is in bytes.
  s.limit = s.g ? (limit << 12) | 0xFFF : limit;
  s.selector = selector;
  s.type = (d >> 40) & 0xF;
  s.s = (d >> 44) & 1;
  s.dpl = (d >> 45) & 3;
  s.present = (d >> 47) & 1;
  s.avl = (d >> 52) & 1;
  s.l = (d >> 53) & 1;
  s.db = (d >> 54) & 1;
  return s;
}

}  // namespace vmrun::x86
