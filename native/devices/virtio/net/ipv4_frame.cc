#include "devices/virtio/net/ipv4_frame.h"

#include <arpa/inet.h>

#include <cstring>

namespace vmrun {

namespace {

constexpr size_t kIpv4MinHeader = 20;
constexpr size_t kUdpHeader = 8;
constexpr uint8_t kProtocolUdp = 17;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void put_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

uint32_t checksum_add(uint32_t sum, const uint8_t* p, size_t len) {
  for (; len >= 2; p += 2, len -= 2) sum += be16(p);
  if (len) sum += static_cast<uint32_t>(p[0]) << 8;
  return sum;
}

uint16_t checksum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

/** The IPv4 header of a frame and its header/total lengths, all checked against `len`. */
const uint8_t* ipv4_header(const uint8_t* frame, size_t len, size_t* header_len, size_t* total_len) {
  if (ether_type(frame, len) != kEtherTypeIpv4 || len < kEthernetHeaderBytes + kIpv4MinHeader) return nullptr;
  const uint8_t* ip = frame + kEthernetHeaderBytes;
  if ((ip[0] >> 4) != 4) return nullptr;
  size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
  size_t total = be16(ip + 2);
  if (ihl < kIpv4MinHeader || total < ihl || total > len - kEthernetHeaderBytes) return nullptr;
  *header_len = ihl;
  *total_len = total;
  return ip;
}

}  // namespace

uint16_t ether_type(const uint8_t* frame, size_t len) {
  return len < kEthernetHeaderBytes ? 0 : be16(frame + 12);
}

bool ipv4_destination(const uint8_t* frame, size_t len, uint32_t* dst) {
  size_t ihl, total;
  const uint8_t* ip = ipv4_header(frame, len, &ihl, &total);
  if (!ip) return false;
  std::memcpy(dst, ip + 16, 4);
  return true;
}

bool parse_udp_datagram(const uint8_t* frame, size_t len, UdpDatagram* out) {
  size_t ihl, total;
  const uint8_t* ip = ipv4_header(frame, len, &ihl, &total);
  if (!ip || ip[9] != kProtocolUdp) return false;
  if ((be16(ip + 6) & 0x3fff) != 0) return false;  // a fragment (MF set or an offset): not ours to reassemble
  if (total - ihl < kUdpHeader) return false;
  const uint8_t* udp = ip + ihl;
  size_t udp_len = be16(udp + 4);
  if (udp_len < kUdpHeader || udp_len > total - ihl) return false;
  std::memcpy(out->src_mac.data(), frame + 6, 6);
  std::memcpy(&out->src_ip, ip + 12, 4);
  std::memcpy(&out->dst_ip, ip + 16, 4);
  out->src_port = be16(udp);
  out->dst_port = be16(udp + 2);
  out->payload = udp + kUdpHeader;
  out->payload_len = udp_len - kUdpHeader;
  return true;
}

std::vector<uint8_t> build_udp_frame(const MacAddress& dst_mac, const MacAddress& src_mac, uint32_t src_ip,
                                     uint16_t src_port, uint32_t dst_ip, uint16_t dst_port, const uint8_t* payload,
                                     size_t payload_len) {
  const size_t udp_len = kUdpHeader + payload_len;
  const size_t ip_len = kIpv4MinHeader + udp_len;
  std::vector<uint8_t> f(kEthernetHeaderBytes + ip_len, 0);
  std::memcpy(f.data(), dst_mac.data(), 6);
  std::memcpy(f.data() + 6, src_mac.data(), 6);
  put_be16(f.data() + 12, kEtherTypeIpv4);
  uint8_t* ip = f.data() + kEthernetHeaderBytes;
  ip[0] = 0x45;
  put_be16(ip + 2, static_cast<uint16_t>(ip_len));
  put_be16(ip + 6, 0x4000);  // don't fragment
  ip[8] = 64;
  ip[9] = kProtocolUdp;
  std::memcpy(ip + 12, &src_ip, 4);
  std::memcpy(ip + 16, &dst_ip, 4);
  put_be16(ip + 10, checksum_fold(checksum_add(0, ip, kIpv4MinHeader)));
  uint8_t* udp = ip + kIpv4MinHeader;
  put_be16(udp, src_port);
  put_be16(udp + 2, dst_port);
  put_be16(udp + 4, static_cast<uint16_t>(udp_len));
  std::memcpy(udp + kUdpHeader, payload, payload_len);
  // The UDP checksum covers a pseudo-header: addresses, protocol, length.
  uint32_t sum = checksum_add(0, ip + 12, 8);
  sum += kProtocolUdp + static_cast<uint32_t>(udp_len);
  uint16_t c = checksum_fold(checksum_add(sum, udp, udp_len));
  put_be16(udp + 6, c == 0 ? 0xffff : c);
  return f;
}

}  // namespace vmrun
