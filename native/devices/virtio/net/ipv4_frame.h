// The little of Ethernet/IPv4/UDP that the net device reads itself, before a frame
// reaches the user-mode stack: where an IPv4 frame goes (the host-loopback policy) and
// the UDP datagrams of DNS queries (the relay). Every length is checked against the
// frame: these bytes come from the guest.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace vmrun {

constexpr size_t kEthernetHeaderBytes = 14;
constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;

using MacAddress = std::array<uint8_t, 6>;

/** The EtherType of a frame, or 0 if it is shorter than an Ethernet header. */
uint16_t ether_type(const uint8_t* frame, size_t len);

/** The destination address (network byte order) of an IPv4 frame; false if it is not one or is truncated. */
bool ipv4_destination(const uint8_t* frame, size_t len, uint32_t* dst);

/** An unfragmented IPv4 UDP datagram inside a frame; `payload` points into the frame. */
struct UdpDatagram {
  MacAddress src_mac;
  uint32_t src_ip, dst_ip;      // network byte order
  uint16_t src_port, dst_port;  // host byte order
  const uint8_t* payload;
  size_t payload_len;
};

/** Parses `frame` as Ethernet + IPv4 + UDP; false if it is anything else or malformed. */
bool parse_udp_datagram(const uint8_t* frame, size_t len, UdpDatagram* out);

/** An Ethernet + IPv4 + UDP frame carrying `payload` (checksums filled in). */
std::vector<uint8_t> build_udp_frame(const MacAddress& dst_mac, const MacAddress& src_mac, uint32_t src_ip,
                                     uint16_t src_port, uint32_t dst_ip, uint16_t dst_port, const uint8_t* payload,
                                     size_t payload_len);

}  // namespace vmrun
