// Conversions between JS values and native types at the addon boundary. Every value
// from JS is type-checked here; a wrong type is a TypeError naming the field.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "backend/hypervisor.h"
#include "common/error.h"
#include "devices/device.h"
#include "vmm/builder.h"
#include "vmm/machine.h"

namespace vmrun::binding {

/** Throws the native error as a JS Error whose `code` maps to a VmrunError kind. */
[[noreturn]] void throw_js(Napi::Env env, const std::exception& e);
Napi::Error to_js_error(Napi::Env env, const std::exception& e);

MachineConfig machine_config_from(const Napi::Object& o);
/** The `restore` member of a machine config: {ramImage, state: {vm, vcpus, devices}}. */
RestoreConfig restore_config_from(const Napi::Object& o);
Napi::Object machine_state_to(Napi::Env env, const MachineState& s);
Napi::Object snapshot_capture_to(Napi::Env env, const SnapshotCapture& c);
Napi::Object host_report_to(Napi::Env env, const HostReport& r);
Napi::Object stop_request_to(Napi::Env env, const StopRequest& r);
Napi::Object stats_to(Napi::Env env, const MachineStats& s);
/** The vsock limits the addon enforces, for TypeScript to check against (never copy them). */
Napi::Object vsock_limits_to(Napi::Env env);

std::string get_string(const Napi::Object& o, const char* key, const std::string& fallback);
std::vector<std::string> get_string_array(const Napi::Object& o, const char* key);

}  // namespace vmrun::binding
