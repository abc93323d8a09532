#include "debug/gdb_packet.h"

namespace vmrun::gdb {

namespace {
int hex_digit(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
constexpr char kDigits[] = "0123456789abcdef";
}  // namespace

void PacketReader::feed(const uint8_t* data, size_t len, std::vector<InputEvent>& out) {
  for (size_t i = 0; i < len; i++) {
    const uint8_t c = data[i];
    switch (state_) {
      case State::Between:
        // Anything else between packets (stray bytes, line noise) is skipped.
        if (c == '$') {
          state_ = State::Body;
          body_.clear();
          sum_ = 0;
          too_long_ = false;
          bad_digit_ = false;
        } else if (c == 0x03) {
          out.push_back({InputEvent::Kind::Interrupt, {}});
        } else if (c == '+') {
          out.push_back({InputEvent::Kind::Ack, {}});
        } else if (c == '-') {
          out.push_back({InputEvent::Kind::Nack, {}});
        }
        break;
      case State::Body:
        if (c == '#') {
          state_ = State::Checksum1;
        } else if (c == '$') {
          // A new packet before this one ended: the debugger gave up on it.
          body_.clear();
          sum_ = 0;
          too_long_ = false;
        } else {
          sum_ = static_cast<uint8_t>(sum_ + c);
          if (body_.size() < kMaxPacketSize) body_.push_back(static_cast<char>(c));
          else too_long_ = true;
        }
        break;
      case State::Checksum1: {
        int d = hex_digit(c);
        bad_digit_ = d < 0;
        checksum_high_ = d < 0 ? 0 : d;
        state_ = State::Checksum2;
        break;
      }
      case State::Checksum2: {
        int d = hex_digit(c);
        state_ = State::Between;
        if (too_long_) {
          out.push_back({InputEvent::Kind::TooLong, {}});
        } else if (bad_digit_ || d < 0 || ((checksum_high_ << 4) | d) != sum_) {
          out.push_back({InputEvent::Kind::BadChecksum, {}});
        } else {
          out.push_back({InputEvent::Kind::Packet, std::move(body_)});
        }
        body_.clear();
        break;
      }
    }
  }
}

std::string frame_packet(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 4);
  out.push_back('$');
  uint8_t sum = 0;
  for (char ch : payload) {
    if (ch == '$' || ch == '#' || ch == '}' || ch == '*') {
      out.push_back('}');
      sum = static_cast<uint8_t>(sum + '}');
      ch = static_cast<char>(ch ^ 0x20);
    }
    out.push_back(ch);
    sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(ch));
  }
  out.push_back('#');
  out.push_back(kDigits[sum >> 4]);
  out.push_back(kDigits[sum & 0xF]);
  return out;
}

std::string unescape_binary(std::string_view escaped) {
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); i++) {
    if (escaped[i] == '}' && i + 1 < escaped.size()) out.push_back(static_cast<char>(escaped[++i] ^ 0x20));
    else out.push_back(escaped[i]);
  }
  return out;
}

std::string to_hex(const uint8_t* data, size_t len) {
  std::string out(len * 2, '0');
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xF];
  }
  return out;
}

std::optional<std::vector<uint8_t>> from_hex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); i++) {
    int hi = hex_digit(static_cast<uint8_t>(hex[2 * i])), lo = hex_digit(static_cast<uint8_t>(hex[2 * i + 1]));
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

std::optional<uint64_t> parse_hex_number(std::string_view hex) {
  if (hex.empty() || hex.size() > 16) return std::nullopt;
  uint64_t v = 0;
  for (char ch : hex) {
    int d = hex_digit(static_cast<uint8_t>(ch));
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  return v;
}

std::pair<std::string_view, std::string_view> split_once(std::string_view s, char sep) {
  size_t at = s.find(sep);
  if (at == std::string_view::npos) return {s, {}};
  return {s.substr(0, at), s.substr(at + 1)};
}

}  // namespace vmrun::gdb
