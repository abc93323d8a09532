#include "binding/network_convert.h"

#include <arpa/inet.h>

#include <cstdio>
#include <string>

namespace vmrun::binding {

namespace {

[[noreturn]] void bad(Napi::Env env, const std::string& what) {
  throw Napi::TypeError::New(env, "machine config: network." + what);
}

uint32_t ipv4_from(const Napi::Value& v, const char* what) {
  in_addr a{};
  if (!v.IsString() || inet_pton(AF_INET, v.As<Napi::String>().Utf8Value().c_str(), &a) != 1)
    bad(v.Env(), std::string(what) + " must be an IPv4 address string");
  return a.s_addr;
}

uint16_t port_from(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) bad(v.Env(), std::string(what) + " must be a port number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 65535) || d != static_cast<double>(static_cast<uint32_t>(d)))
    bad(v.Env(), std::string(what) + " must be a port number 1-65535");
  return static_cast<uint16_t>(d);
}

std::string dotted(uint32_t addr) {
  char s[INET_ADDRSTRLEN];
  in_addr a{addr};
  inet_ntop(AF_INET, &a, s, sizeof s);
  return s;
}

}  // namespace

std::array<uint8_t, 6> mac_from(const Napi::Value& v) {
  std::array<uint8_t, 6> mac{};
  unsigned b[6];
  char tail;
  if (!v.IsString() || std::sscanf(v.As<Napi::String>().Utf8Value().c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2],
                                   &b[3], &b[4], &b[5], &tail) != 6)
    bad(v.Env(), "mac must be six hex bytes separated by colons");
  if (b[0] & 1) bad(v.Env(), "mac must be a unicast address");
  for (int i = 0; i < 6; i++) mac[i] = static_cast<uint8_t>(b[i]);
  return mac;
}

std::vector<PortForward> port_forwards_from(const Napi::Value& publish) {
  Napi::Env env = publish.Env();
  std::vector<PortForward> out;
  if (publish.IsUndefined()) return out;
  if (!publish.IsArray()) bad(env, "publish must be an array");
  auto a = publish.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    if (!a.Get(i).IsObject()) bad(env, "publish[] must be objects");
    auto p = a.Get(i).As<Napi::Object>();
    PortForward f;
    Napi::Value proto = p.Get("protocol");
    std::string pr = proto.IsString() ? proto.As<Napi::String>().Utf8Value() : "";
    if (pr != "tcp" && pr != "udp") bad(env, "publish[].protocol must be \"tcp\" or \"udp\"");
    f.udp = pr == "udp";
    f.host_ip = ipv4_from(p.Get("hostIp"), "publish[].hostIp");
    f.host_port = port_from(p.Get("hostPort"), "publish[].hostPort");
    f.guest_port = port_from(p.Get("guestPort"), "publish[].guestPort");
    out.push_back(f);
  }
  return out;
}

Napi::Array port_forwards_to(Napi::Env env, const std::vector<PortForward>& forwards) {
  auto a = Napi::Array::New(env, forwards.size());
  for (size_t i = 0; i < forwards.size(); i++) {
    auto o = Napi::Object::New(env);
    o.Set("protocol", forwards[i].udp ? "udp" : "tcp");
    o.Set("hostIp", dotted(forwards[i].host_ip));
    o.Set("hostPort", forwards[i].host_port);
    o.Set("guestPort", forwards[i].guest_port);
    a.Set(static_cast<uint32_t>(i), o);
  }
  return a;
}

NetworkConfig network_config_from(const Napi::Object& o) {
  Napi::Env env = o.Env();
  NetworkConfig c;
  Napi::Value mode = o.Get("mode");
  std::string m = mode.IsString() ? mode.As<Napi::String>().Utf8Value() : "";
  if (m == "user") c.mode = NetworkMode::User;
  else if (m == "host-loopback") c.mode = NetworkMode::HostLoopback;
  else bad(env, "mode must be \"user\" or \"host-loopback\"");
  c.mac = mac_from(o.Get("mac"));
  c.forwards = port_forwards_from(o.Get("publish"));
  Napi::Value dns = o.Get("dns");
  if (!dns.IsUndefined()) {
    if (!dns.IsObject()) bad(env, "dns must be {ip, port}");
    auto d = dns.As<Napi::Object>();
    c.dns_ip = ipv4_from(d.Get("ip"), "dns.ip");
    c.dns_port = port_from(d.Get("port"), "dns.port");
  }
  return c;
}

std::optional<NetworkConfig> optional_network_config_from(const Napi::Object& machine_config) {
  Napi::Value v = machine_config.Get("network");
  if (v.IsUndefined()) return std::nullopt;
  if (!v.IsObject()) bad(v.Env(), "network must be an object");
  return network_config_from(v.As<Napi::Object>());
}

Napi::Object guest_addresses_to(Napi::Env env) {
  GuestAddresses a = default_guest_addresses();
  auto o = Napi::Object::New(env);
  o.Set("guest", dotted(a.guest));
  o.Set("prefix", __builtin_popcount(ntohl(a.netmask)));
  o.Set("gateway", dotted(a.gateway));
  o.Set("nameserver", dotted(a.nameserver));
  return o;
}

}  // namespace vmrun::binding
