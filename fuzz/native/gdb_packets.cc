// Fuzz target: bytes from a debugger's socket as the gdb stub reads them
// (native/debug/gdb_packet.cc), fed in two pieces split where the input says.
// Invariants: no payload beyond the bound, and any input framed by the stub reads
// back, after unescaping, as itself.
#include <cstdlib>
#include <string>
#include <vector>

#include "debug/gdb_packet.h"
#include "targets.h"

namespace vmrun::fuzz {

void gdb_packets(const uint8_t* data, size_t size) {
  using namespace vmrun::gdb;
  std::vector<InputEvent> events;
  PacketReader reader;
  const size_t split = size ? data[0] % (size + 1) : 0;
  reader.feed(data, split, events);
  reader.feed(data + split, size - split, events);
  for (const auto& e : events) {
    if (e.payload.size() > kMaxPacketSize) std::abort();
    if (e.kind == InputEvent::Kind::Packet) {
      (void)parse_hex_number(e.payload);
      (void)from_hex(e.payload);
      (void)unescape_binary(e.payload);
    }
  }
  const std::string input(reinterpret_cast<const char*>(data), size);
  if (size <= kMaxPacketSize / 2) {
    std::vector<InputEvent> again;
    PacketReader fresh;
    const std::string framed = frame_packet(input);
    fresh.feed(reinterpret_cast<const uint8_t*>(framed.data()), framed.size(), again);
    if (again.size() != 1 || again[0].kind != InputEvent::Kind::Packet || unescape_binary(again[0].payload) != input) std::abort();
  }
}

}  // namespace vmrun::fuzz

VMRUN_FUZZ_ENTRY(gdb_packets)
