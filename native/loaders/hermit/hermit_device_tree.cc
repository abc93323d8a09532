#include "loaders/hermit/hermit_device_tree.h"

#include "common/hex.h"
#include "common/fdt_writer.h"

namespace vmrun::hermit {

std::string shell_quote(const std::string& word) {
  if (word.empty()) return "''";
  bool plain = true;
  for (char c : word) {
    bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                std::string("-_./:,+@%=").find(c) != std::string::npos;
    if (!safe) plain = false;
  }
  if (plain) return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string bootargs(const std::vector<std::string>& env, const std::vector<std::string>& app_args) {
  std::string kernel, app;
  for (const std::string& kv : env) {
    size_t eq = kv.find('=');
    if (!kernel.empty()) kernel += ' ';
    kernel += "env=" + shell_quote(kv.substr(0, eq)) + "=" + shell_quote(kv.substr(eq + 1));
  }
  for (const std::string& a : app_args) {
    if (!app.empty()) app += ' ';
    app += shell_quote(a);
  }
  if (app.empty()) return kernel;
  return kernel.empty() ? "-- " + app : kernel + " -- " + app;
}

std::vector<uint8_t> build_device_tree(const DeviceTreeInput& in) {
  fdt::FdtWriter w;
  w.begin_node("");
  w.property_string("compatible", "hermit,uhyve");
  w.property_u32("#address-cells", 2);
  w.property_u32("#size-cells", 2);
  w.begin_node("memory@" + hex(in.ram_start).substr(2));
  w.property_string("device_type", "memory");
  w.property_u64s("reg", {in.ram_start, in.ram_end - in.ram_start});
  w.end_node();
  if (in.tsc_khz) {
    w.begin_node("hermit,tsc");
    w.property_u32("khz", in.tsc_khz);
    w.end_node();
  }
  if (!in.mounts.empty()) {
    w.begin_node("uhyve,mounts");
    w.property_strings("mounts", in.mounts);
    w.end_node();
  }
  w.begin_node("chosen");
  w.property_string("bootargs", bootargs(in.env, in.app_args));
  w.end_node();
  w.end_node();
  return w.finish();
}

}  // namespace vmrun::hermit
