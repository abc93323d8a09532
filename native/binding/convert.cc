#include "binding/convert.h"

#include "binding/network_convert.h"

namespace vmrun::binding {

Napi::Error to_js_error(Napi::Env env, const std::exception& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  const auto* v = dynamic_cast<const VmrunError*>(&e);
  err.Set("code", Napi::String::New(env, v ? error_code_name(v->code()) : "VMRUN_INTERNAL"));
  return err;
}

void throw_js(Napi::Env env, const std::exception& e) { throw to_js_error(env, e); }

static void type_error(const Napi::Object& o, const char* key, const char* expected) {
  throw Napi::TypeError::New(o.Env(), std::string("machine config: ") + key + " must be " + expected);
}

std::string get_string(const Napi::Object& o, const char* key, const std::string& fallback) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) return fallback;
  if (!o.Get(key).IsString()) type_error(o, key, "a string");
  return o.Get(key).As<Napi::String>().Utf8Value();
}

std::vector<std::string> get_string_array(const Napi::Object& o, const char* key) {
  std::vector<std::string> out;
  if (!o.Has(key) || o.Get(key).IsUndefined()) return out;
  if (!o.Get(key).IsArray()) type_error(o, key, "an array of strings");
  auto a = o.Get(key).As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    if (!a.Get(i).IsString()) type_error(o, key, "an array of strings");
    out.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  }
  return out;
}

static double get_number(const Napi::Object& o, const char* key, double fallback) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) return fallback;
  if (!o.Get(key).IsNumber()) type_error(o, key, "a number");
  return o.Get(key).As<Napi::Number>().DoubleValue();
}

/** `vsock: {cid, socketPath}` (optional); ranges are checked by the device. */
static std::optional<virtio::vsock::VsockConfig> vsock_config_from(const Napi::Object& o) {
  if (!o.Has("vsock") || o.Get("vsock").IsUndefined()) return std::nullopt;
  if (!o.Get("vsock").IsObject()) type_error(o, "vsock", "an object {cid, socketPath}");
  auto v = o.Get("vsock").As<Napi::Object>();
  if (!v.Get("cid").IsNumber()) type_error(v, "vsock.cid", "a number");
  double cid = v.Get("cid").As<Napi::Number>().DoubleValue();
  virtio::vsock::VsockConfig c;
  // Out-of-range or fractional values become 0, which the device refuses with a message.
  c.guest_cid = cid >= 0 && cid <= 4294967295.0 && cid == static_cast<double>(static_cast<uint64_t>(cid)) ? static_cast<uint64_t>(cid) : 0;
  c.socket_path = get_string(v, "socketPath", "");
  return c;
}

/** `disks: [{path, readOnly, serial}]` (optional); the files are opened by the builder. */
static std::vector<virtio::blk::DiskConfig> disk_configs_from(const Napi::Object& o) {
  std::vector<virtio::blk::DiskConfig> out;
  if (!o.Has("disks") || o.Get("disks").IsUndefined()) return out;
  if (!o.Get("disks").IsArray()) type_error(o, "disks", "an array of {path, readOnly, serial}");
  auto list = o.Get("disks").As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) {
    if (!list.Get(i).IsObject()) type_error(o, "disks[]", "an object {path, readOnly, serial}");
    auto d = list.Get(i).As<Napi::Object>();
    virtio::blk::DiskConfig c;
    c.path = get_string(d, "path", "");
    if (c.path.empty()) type_error(d, "disks[].path", "a non-empty path");
    c.read_only = d.Get("readOnly").ToBoolean();
    c.serial = get_string(d, "serial", "");
    out.push_back(std::move(c));
  }
  return out;
}

/** `volumes: [{tag, hostDir, readOnly, virtiofsd}]` (optional); virtiofsd is started by the builder. */
static std::vector<virtio::fs::VolumeConfig> volume_configs_from(const Napi::Object& o) {
  std::vector<virtio::fs::VolumeConfig> out;
  if (!o.Has("volumes") || o.Get("volumes").IsUndefined()) return out;
  if (!o.Get("volumes").IsArray()) type_error(o, "volumes", "an array of {tag, hostDir, readOnly, virtiofsd}");
  auto list = o.Get("volumes").As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) {
    if (!list.Get(i).IsObject()) type_error(o, "volumes[]", "an object {tag, hostDir, readOnly, virtiofsd}");
    auto v = list.Get(i).As<Napi::Object>();
    virtio::fs::VolumeConfig c;
    c.tag = get_string(v, "tag", "");
    c.host_dir = get_string(v, "hostDir", "");
    c.virtiofsd_path = get_string(v, "virtiofsd", "");
    if (c.tag.empty() || c.host_dir.empty() || c.virtiofsd_path.empty()) type_error(v, "volumes[]", "{tag, hostDir, virtiofsd} non-empty strings");
    c.read_only = v.Get("readOnly").ToBoolean();
    out.push_back(std::move(c));
  }
  return out;
}

Napi::Object vsock_limits_to(Napi::Env env) {
  auto o = Napi::Object::New(env);
  o.Set("minCid", static_cast<double>(virtio::vsock::kMinGuestCid));
  o.Set("maxCid", static_cast<double>(virtio::vsock::kMaxGuestCid));
  o.Set("maxSocketPathBytes", static_cast<double>(virtio::vsock::kMaxSocketPath));
  o.Set("maxConnections", static_cast<double>(virtio::vsock::kMaxConnections));
  o.Set("bufferBytes", static_cast<double>(virtio::vsock::kBufferSize));
  return o;
}

MachineConfig machine_config_from(const Napi::Object& o) {
  MachineConfig c;
  c.kvm_device = get_string(o, "kvmDevice", "");
  c.memory_size = static_cast<uint64_t>(get_number(o, "memoryBytes", static_cast<double>(c.memory_size)));
  c.cpus = static_cast<int>(get_number(o, "cpus", 1));
  c.kernel_path = get_string(o, "kernel", "");
  if (c.kernel_path.empty()) type_error(o, "kernel", "a non-empty path");
  // "initrd": one path, or several concatenated in order.
  if (o.Has("initrd") && o.Get("initrd").IsArray()) c.initrd_paths = get_string_array(o, "initrd");
  else if (std::string one = get_string(o, "initrd", ""); !one.empty()) c.initrd_paths.push_back(one);
  c.cmdline = get_string(o, "cmdline", "");
  c.guest_args = get_string_array(o, "guestArgs");
  c.guest_env = get_string_array(o, "guestEnv");
  c.file_mappings = get_string_array(o, "fileMappings");
  if (o.Has("aslr") && !o.Get("aslr").IsUndefined()) {
    if (!o.Get("aslr").IsBoolean()) type_error(o, "aslr", "a boolean");
    c.aslr = o.Get("aslr").As<Napi::Boolean>().Value();
  }
  c.network = optional_network_config_from(o);
  c.vsock = vsock_config_from(o);
  if (o.Has("debug") && !o.Get("debug").IsUndefined()) {
    if (!o.Get("debug").IsBoolean()) type_error(o, "debug", "a boolean");
    c.debug = o.Get("debug").As<Napi::Boolean>().Value();
  }
  c.disks = disk_configs_from(o);
  c.volumes = volume_configs_from(o);
  if (o.Has("gdb") && !o.Get("gdb").IsUndefined()) {
    if (!o.Get("gdb").IsObject()) type_error(o, "gdb", "an object {host?, port}");
    Napi::Object g = o.Get("gdb").As<Napi::Object>();
    double port = get_number(g, "port", -1);
    if (port < 0 || port > 65535 || port != static_cast<double>(static_cast<int>(port))) type_error(g, "gdb.port", "an integer 0-65535");
    GdbListenConfig gdb;
    gdb.host = get_string(g, "host", "127.0.0.1");
    gdb.port = static_cast<uint16_t>(port);
    c.gdb = gdb;
  }
  return c;
}

static StateBlob blob_from(const Napi::Value& v, const char* what) {
  if (!v.IsBuffer()) throw Napi::TypeError::New(v.Env(), std::string("restore state: ") + what + " must be a Buffer");
  auto b = v.As<Napi::Buffer<uint8_t>>();
  return StateBlob(b.Data(), b.Data() + b.Length());
}

RestoreConfig restore_config_from(const Napi::Object& o) {
  RestoreConfig c;
  c.kvm_device = get_string(o, "kvmDevice", "");
  c.memory_size = static_cast<uint64_t>(get_number(o, "memoryBytes", 0));
  c.cpus = static_cast<int>(get_number(o, "cpus", 1));
  auto r = o.Get("restore").As<Napi::Object>();
  c.ram_image_path = get_string(r, "ramImage", "");
  c.catch_up_wall_clock = r.Has("catchUpClock") && r.Get("catchUpClock").ToBoolean();
  c.network = optional_network_config_from(o);
  c.vsock = vsock_config_from(o);
  c.disks = disk_configs_from(o);
  c.volumes = volume_configs_from(o);
  c.kernel_format = get_string(r, "kernelFormat", "linux-elf");
  c.file_mappings = get_string_array(o, "fileMappings");
  if (!r.Get("state").IsObject()) type_error(r, "state", "an object");
  auto st = r.Get("state").As<Napi::Object>();
  c.state.vm = blob_from(st.Get("vm"), "vm");
  if (!st.Get("vcpus").IsArray()) type_error(st, "vcpus", "an array of Buffers");
  auto vcpus = st.Get("vcpus").As<Napi::Array>();
  for (uint32_t i = 0; i < vcpus.Length(); i++) c.state.vcpus.push_back(blob_from(vcpus.Get(i), "vcpus[]"));
  if (!st.Get("devices").IsObject()) type_error(st, "devices", "an object of Buffers");
  auto devices = st.Get("devices").As<Napi::Object>();
  auto names = devices.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    c.state.devices.emplace_back(name, blob_from(devices.Get(name), "devices[]"));
  }
  return c;
}

Napi::Object machine_state_to(Napi::Env env, const MachineState& state) {
  auto o = Napi::Object::New(env);
  o.Set("vm", Napi::Buffer<uint8_t>::Copy(env, state.vm.data(), state.vm.size()));
  auto vcpus = Napi::Array::New(env, state.vcpus.size());
  for (size_t i = 0; i < state.vcpus.size(); i++)
    vcpus.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, state.vcpus[i].data(), state.vcpus[i].size()));
  o.Set("vcpus", vcpus);
  auto devices = Napi::Object::New(env);
  for (const auto& [name, blob] : state.devices) devices.Set(name, Napi::Buffer<uint8_t>::Copy(env, blob.data(), blob.size()));
  o.Set("devices", devices);
  return o;
}

Napi::Object snapshot_capture_to(Napi::Env env, const SnapshotCapture& c) {
  auto o = Napi::Object::New(env);
  o.Set("state", machine_state_to(env, c.state));
  o.Set("memoryIndex", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(c.chunks.data()), c.chunks.size() * sizeof(MemoryChunk)));
  o.Set("memoryDataLength", static_cast<double>(c.data_length));
  o.Set("touchedPages", static_cast<double>(c.touched_pages));
  o.Set("pausedMs", c.paused_ms);
  o.Set("writeMs", c.write_ms);
  return o;
}

Napi::Object host_report_to(Napi::Env env, const HostReport& r) {
  auto o = Napi::Object::New(env);
  o.Set("backend", r.backend);
  o.Set("devicePath", r.device_path);
  o.Set("apiVersion", r.api_version);
  o.Set("cpuVendor", r.cpu_vendor);
  o.Set("cpuModel", r.cpu_model);
  o.Set("hardwareVirtualization", r.hardware_virtualization);
  o.Set("virtualizationKind", r.virtualization_kind);
  o.Set("maxVcpus", r.max_vcpus);
  o.Set("recommendedVcpus", r.recommended_vcpus);
  auto caps = Napi::Object::New(env);
  for (const auto& [name, present] : r.capabilities) caps.Set(name, present);
  o.Set("capabilities", caps);
  if (!r.guest_clock_restore.empty()) o.Set("guestClockRestore", r.guest_clock_restore);
  return o;
}

static const char* stop_kind_name(StopRequest::Kind k) {
  switch (k) {
    case StopRequest::Kind::Reset: return "reset";
    case StopRequest::Kind::PowerOff: return "poweroff";
    case StopRequest::Kind::ExitCode: return "exit-code";
    case StopRequest::Kind::TripleFault: return "triple-fault";
    case StopRequest::Kind::EmulationFailure: return "emulation-failure";
    case StopRequest::Kind::GuestError: return "guest-error";
    case StopRequest::Kind::HostError: return "host-error";
    case StopRequest::Kind::Killed: return "killed";
  }
  return "guest-error";
}

Napi::Object stop_request_to(Napi::Env env, const StopRequest& r) {
  auto o = Napi::Object::New(env);
  o.Set("reason", stop_kind_name(r.kind));
  o.Set("exitCode", r.exit_code);
  o.Set("vcpu", r.vcpu);
  o.Set("rip", Napi::BigInt::New(env, static_cast<uint64_t>(r.rip)));
  o.Set("detail", r.detail);
  o.Set("instruction", Napi::Buffer<uint8_t>::Copy(env, r.instruction.data(), r.instruction.size()));
  return o;
}

Napi::Object stats_to(Napi::Env env, const MachineStats& s) {
  auto o = Napi::Object::New(env);
  auto exits = Napi::Object::New(env);
  for (const auto& [k, v] : s.exits) exits.Set(k, static_cast<double>(v));
  o.Set("exits", exits);
  o.Set("consoleBytes", static_cast<double>(s.console_bytes));
  o.Set("runSeconds", s.run_seconds);
  o.Set("firstEntryNs", Napi::BigInt::New(env, s.first_entry_ns));
  auto setup = Napi::Object::New(env);
  for (const auto& [step, ms] : s.setup_ms) setup.Set(step, ms);
  o.Set("setupMs", setup);
  auto virtio = Napi::Object::New(env);
  for (const auto& f : s.virtio_failures) {
    auto d = Napi::Object::New(env);
    d.Set("needsReset", static_cast<double>(f.count));
    d.Set("lastReason", f.last);
    virtio.Set(f.device, d);
  }
  o.Set("virtio", virtio);
  return o;
}

}  // namespace vmrun::binding
