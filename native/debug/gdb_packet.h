// The GDB remote serial protocol's framing, for the stub in gdb_stub.cc: packets
// `$payload#cs` with a two-digit hex checksum, the acks `+`/`-`, and the interrupt
// byte 0x03. Everything read here comes from a socket: lengths are bounded, a bad
// checksum is reported (never handed on), and no input makes it fail.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmrun::gdb {

/** The largest packet payload accepted (and advertised as PacketSize). */
constexpr size_t kMaxPacketSize = 0x4000;

/** One thing the debugger sent. */
struct InputEvent {
  enum class Kind {
    Packet,       // a well-formed packet; payload is its body, still escaped (X's binary data)
    Interrupt,    // 0x03 between packets: stop the guest
    Ack,          // '+'
    Nack,         // '-': resend the last reply
    BadChecksum,  // a packet whose checksum did not match: answer '-'
    TooLong,      // a packet longer than kMaxPacketSize: dropped
  };
  Kind kind;
  std::string payload;
};

/** Splits the byte stream from the debugger into events; keeps partial packets between calls. */
class PacketReader {
 public:
  void feed(const uint8_t* data, size_t len, std::vector<InputEvent>& out);

 private:
  enum class State { Between, Body, Checksum1, Checksum2 };
  State state_ = State::Between;
  std::string body_;
  uint8_t sum_ = 0;
  int checksum_high_ = 0;
  bool too_long_ = false;
  bool bad_digit_ = false;
};

/** `$payload#cs`, with '$', '#', '}' and '*' in the payload escaped. */
std::string frame_packet(std::string_view payload);

/** Undoes the `}`-escaping of binary data (X packets, qXfer). */
std::string unescape_binary(std::string_view escaped);

/** Lowercase hex of bytes. */
std::string to_hex(const uint8_t* data, size_t len);
/** Hex digits to bytes; nullopt on an odd length or a non-hex digit. */
std::optional<std::vector<uint8_t>> from_hex(std::string_view hex);
/** A hex number of at most 16 digits (no prefix); nullopt otherwise. */
std::optional<uint64_t> parse_hex_number(std::string_view hex);

/** Splits `s` at the first `sep`: {before, after}; after is empty without one. */
std::pair<std::string_view, std::string_view> split_once(std::string_view s, char sep);

}  // namespace vmrun::gdb
