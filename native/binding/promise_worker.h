// Runs blocking native work (waiting for vCPUs to park, capturing state, reading a
// snapshot) on libuv's thread pool and settles a Promise, so the event loop never
// waits on a vCPU.
#pragma once
#include <napi.h>

#include <functional>
#include <string>

#include "binding/convert.h"

namespace vmrun::binding {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Result = std::function<Napi::Value(Napi::Env)>;

  /** `settled_on_error` runs on the JS thread when the work failed (result() is not called then). */
  static Napi::Promise run(Napi::Env env, Work work, Result result, std::function<void()> settled_on_error = {}) {
    auto* w = new PromiseWorker(env, std::move(work), std::move(result));
    w->on_error_ = std::move(settled_on_error);
    Napi::Promise p = w->deferred_.Promise();
    w->Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const VmrunError& e) {
      code_ = error_code_name(e.code());
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = "VMRUN_INTERNAL";
      SetError(e.what());
    }
  }
  void OnOK() override {
    try {
      deferred_.Resolve(result_(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    if (on_error_) on_error_();
    Napi::Error err = Napi::Error::New(Env(), e.Message());
    err.Set("code", Napi::String::New(Env(), code_));
    deferred_.Reject(err.Value());
  }

 private:
  PromiseWorker(Napi::Env env, Work work, Result result)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), result_(std::move(result)) {}
  Napi::Promise::Deferred deferred_;
  Work work_;
  Result result_;
  std::string code_ = "VMRUN_INTERNAL";
  std::function<void()> on_error_;
};

}  // namespace vmrun::binding
