// What a VM's user-mode network looks like: the guest's addresses (fixed, QEMU's
// user-network plan so guides written for `-netdev user` apply), the ports the host
// publishes into the guest, and where the guest's DNS queries go. Plain data: the
// binding fills it from JS, the net device saves it in its snapshot state.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace vmrun {

/** Which traffic the back end lets the guest send. */
enum class NetworkMode : uint32_t {
  /** Anything the host can reach (like QEMU's -netdev user / docker's bridge). */
  User = 1,
  /** Only the gateway address (the host's loopback) and the DNS relay: a sandbox mode. */
  HostLoopback = 2,
};

/** One published port: host [ip]:port -> guest port (docker's -p). */
struct PortForward {
  bool udp = false;
  uint32_t host_ip = 0;  // network byte order; 127.0.0.1 unless the user gave one
  uint16_t host_port = 0;
  uint16_t guest_port = 0;
};

/** The guest's side of the network plan, in network byte order. */
struct GuestAddresses {
  uint32_t network;    // 10.0.2.0
  uint32_t netmask;    // 255.255.255.0
  uint32_t gateway;    // 10.0.2.2: the host; connections to it reach the host's 127.0.0.1
  uint32_t nameserver; // 10.0.2.3: DNS (relayed, see dns_relay.h)
  uint32_t guest;      // 10.0.2.15
};

/**
 * The link's MTU: the guest learns it from the net device (VIRTIO_NET_F_MTU) and the
 * user-mode stack uses it for its side of the link. Larger than Ethernet's so the guest
 * and the stack handle one packet where they handled eleven, but not 65520 (podman's
 * slirp4netns and passt): slirp's TCP does no window scaling, so the guest offers at
 * most 64 KiB of window, and Linux offers it in whole segments. With 65480-byte segments
 * that is one segment in flight, stop and wait; with 16344 it is four
 * (docs/networking.md has the measurements).
 */
constexpr uint32_t kLinkMtu = 16384;
/** What a guest whose driver did not take the MTU may send and receive: Ethernet's 1500. */
constexpr uint32_t kDefaultMtu = 1500;

/** The addresses every vmrun guest gets (exported to TypeScript by the binding). */
GuestAddresses default_guest_addresses();

struct NetworkConfig {
  NetworkMode mode = NetworkMode::User;
  std::array<uint8_t, 6> mac{};  // chosen by the host per VM (and per restored clone)
  std::vector<PortForward> forwards;
  /** Host resolver the guest's DNS queries are relayed to; port 0 = the host's resolv.conf (slirp's default). */
  uint32_t dns_ip = 0;    // network byte order
  uint16_t dns_port = 0;  // host byte order
};

/** "127.0.0.1:8080->80/tcp" for messages. */
std::string describe_forward(const PortForward& f);

}  // namespace vmrun
