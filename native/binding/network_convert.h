// The `network` member of a machine config (src/native/addon.ts NativeNetworkConfig) and
// the guest address plan exported to TypeScript.
#pragma once
#include <napi.h>

#include <array>
#include <optional>
#include <vector>

#include "devices/virtio/net/network_config.h"

namespace vmrun::binding {

/** {mode, mac, publish, dns?} -> NetworkConfig; a wrong type or value is a TypeError naming the field. */
NetworkConfig network_config_from(const Napi::Object& o);
/** The `network` member of a machine config, if present. */
std::optional<NetworkConfig> optional_network_config_from(const Napi::Object& machine_config);
/** [{protocol, hostIp, hostPort, guestPort}] (undefined: none). */
std::vector<PortForward> port_forwards_from(const Napi::Value& publish);
/** The reverse, for Machine.ports(). */
Napi::Array port_forwards_to(Napi::Env env, const std::vector<PortForward>& forwards);
/** "02:ab:..." -> 6 bytes. */
std::array<uint8_t, 6> mac_from(const Napi::Value& v);
/** {guest, prefix, gateway, nameserver} as dotted strings: the plan every guest gets. */
Napi::Object guest_addresses_to(Napi::Env env);

}  // namespace vmrun::binding
