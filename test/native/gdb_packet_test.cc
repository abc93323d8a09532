// The gdb stub's packet framing (native/debug/gdb_packet.cc) and register layout
// (native/arch/x86_64/gdb_registers.cc): what arrives on the socket is untrusted.
#include <cstring>
#include <random>

#include "arch/x86_64/gdb_registers.h"
#include "check.h"
#include "debug/gdb_packet.h"

using namespace vmrun::gdb;
using Kind = InputEvent::Kind;

namespace {
std::vector<InputEvent> feed_all(PacketReader& r, std::string_view bytes) {
  std::vector<InputEvent> out;
  r.feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), out);
  return out;
}
}  // namespace

TEST("gdb packets: a framed packet, acks and an interrupt between packets") {
  PacketReader r;
  auto e = feed_all(r, "+$qSupported:multiprocess+#c6-\x03");
  CHECK_EQ(e.size(), size_t{4});
  CHECK(e[0].kind == Kind::Ack);
  CHECK(e[1].kind == Kind::Packet);
  CHECK_EQ(e[1].payload, std::string("qSupported:multiprocess+"));
  CHECK(e[2].kind == Kind::Nack);
  CHECK(e[3].kind == Kind::Interrupt);
}

TEST("gdb packets: one byte at a time gives the same packet; 0x03 inside a packet is data") {
  PacketReader r;
  std::string framed = frame_packet(std::string("m4010\x03", 6));
  std::vector<InputEvent> all;
  for (char c : framed) {
    auto e = feed_all(r, std::string_view(&c, 1));
    all.insert(all.end(), e.begin(), e.end());
  }
  CHECK_EQ(all.size(), size_t{1});
  CHECK(all[0].kind == Kind::Packet);
  CHECK_EQ(all[0].payload, std::string("m4010\x03", 6));
}

TEST("gdb packets: a wrong checksum or a non-hex checksum is reported, never handed on") {
  PacketReader r;
  auto e = feed_all(r, "$g#68$g#67$g#zz");
  CHECK_EQ(e.size(), size_t{3});
  CHECK(e[0].kind == Kind::BadChecksum);
  CHECK(e[1].kind == Kind::Packet);
  CHECK(e[2].kind == Kind::BadChecksum);
}

TEST("gdb packets: a packet longer than the bound is dropped and the next one still parses") {
  PacketReader r;
  std::string huge = frame_packet(std::string(kMaxPacketSize + 100, 'A'));
  auto e = feed_all(r, huge + frame_packet("?"));
  CHECK_EQ(e.size(), size_t{2});
  CHECK(e[0].kind == Kind::TooLong);
  CHECK(e[1].kind == Kind::Packet);
  CHECK_EQ(e[1].payload, std::string("?"));
  // Exactly the bound is accepted.
  auto at = feed_all(r, frame_packet(std::string(kMaxPacketSize, 'B')));
  CHECK(at.size() == 1 && at[0].kind == Kind::Packet && at[0].payload.size() == kMaxPacketSize);
}

TEST("gdb packets: a '$' inside a packet starts over (the debugger gave up on the first)") {
  PacketReader r;
  auto e = feed_all(r, "$m10,$g#67");
  CHECK_EQ(e.size(), size_t{1});
  CHECK_EQ(e[0].payload, std::string("g"));
}

TEST("gdb packets: escaping round-trips binary data through framing and X-packet unescaping") {
  std::string binary;
  for (int i = 0; i < 256; i++) binary.push_back(static_cast<char>(i));
  std::string framed = frame_packet(binary);
  // Nothing in the frame body may look like the end of a packet.
  CHECK_EQ(framed.find('#', 1), framed.size() - 3);
  PacketReader r;
  auto e = feed_all(r, framed);
  CHECK(e.size() == 1 && e[0].kind == Kind::Packet);
  CHECK_EQ(unescape_binary(e[0].payload), binary);
}

TEST("gdb packets: random garbage never crashes the reader and never yields an oversized payload") {
  std::mt19937 rng(15);
  PacketReader r;
  size_t packets = 0;
  for (int round = 0; round < 2000; round++) {
    std::string bytes(static_cast<size_t>(rng() % 300), '\0');
    for (auto& c : bytes) c = "$#+-}\x03"[rng() % 6] ^ static_cast<char>(rng() % 2 ? 0 : rng());
    for (const auto& ev : feed_all(r, bytes)) {
      CHECK(ev.payload.size() <= kMaxPacketSize);
      packets += ev.kind == Kind::Packet;
    }
  }
  CHECK(packets < 2000);  // a random checksum matches 1 time in 256
}

TEST("gdb packets: hex numbers and byte strings are bounded and checked") {
  const uint64_t all_ones = parse_hex_number("ffffffffffffffff").value_or(0);
  CHECK_EQ(all_ones, 0xFFFFFFFFFFFFFFFFULL);
  CHECK(!parse_hex_number("10000000000000000"));  // 17 digits
  CHECK(!parse_hex_number(""));
  CHECK(!parse_hex_number("12g"));
  CHECK(!from_hex("abc"));
  CHECK(!from_hex("zz"));
  const std::vector<uint8_t> bytes = from_hex("00ff7f").value_or(std::vector<uint8_t>{});
  CHECK_EQ(to_hex(bytes.data(), bytes.size()), std::string("00ff7f"));
}

TEST("gdb registers: the g packet layout is GDB's amd64 core + sse + segments") {
  using namespace vmrun::x86;
  // 16 GPRs + rip (8), eflags + 6 selectors (4), 8 x87 (10), 8 x87 control (4), 16 xmm (16), mxcsr (4), fs/gs base (8).
  CHECK_EQ(gdb_register_file_size(), size_t{16 * 8 + 8 + 4 + 6 * 4 + 8 * 10 + 8 * 4 + 16 * 16 + 4 + 2 * 8});
  DebugRegisterFile f;
  f.gpr[6] = 0x1111;  // rbp: GDB's register 6
  f.rip = 0x401000;
  f.rflags = 0x246;
  f.selector[0] = 0x08;
  uint8_t out[16] = {};
  read_gdb_register(f, kGdbRipRegister, out);
  uint64_t rip;
  std::memcpy(&rip, out, 8);
  CHECK_EQ(rip, uint64_t{0x401000});
  read_gdb_register(f, kGdbEflagsRegister, out);
  uint32_t eflags;
  std::memcpy(&eflags, out, 4);
  CHECK_EQ(eflags, uint32_t{0x246});
  read_gdb_register(f, kGdbFirstSegmentRegister, out);
  CHECK_EQ(out[0], uint8_t{0x08});
  const uint8_t new_eflags[4] = {0x02, 0x01, 0, 0};
  write_gdb_register(f, kGdbEflagsRegister, new_eflags);
  CHECK_EQ(f.rflags, uint64_t{0x102});
  CHECK_EQ(gdb_register_size(kGdbRegisterCount), size_t{0});
  CHECK(gdb_target_xml().find("<architecture>i386:x86-64</architecture>") != std::string::npos);
  CHECK(gdb_target_xml().find("name=\"xmm15\"") != std::string::npos);
}
