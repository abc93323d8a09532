// The addon's entry point: registers the host report function and the NativeMachine
// class. Only type conversion and forwarding happen in binding/.
#include <napi.h>

#include "backend/hypervisor.h"
#include "binding/convert.h"
#include "binding/machine_binding.h"

namespace vmrun::binding {

/** hostReport(devicePath?: string): what the host's hypervisor offers. */
static Napi::Value host_report(const Napi::CallbackInfo& info) {
  std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  try {
    return host_report_to(info.Env(), open_hypervisor(path)->report());
  } catch (const std::exception& e) {
    throw_js(info.Env(), e);
  }
}

static Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("hostReport", Napi::Function::New(env, host_report, "hostReport"));
  exports.Set("NativeMachine", MachineBinding::define(env));
  return exports;
}

NODE_API_MODULE(vmrun_native, init)

}  // namespace vmrun::binding
