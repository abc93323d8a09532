#include "binding/machine_binding.h"

#include "binding/convert.h"
#include "binding/network_convert.h"
#include "binding/promise_worker.h"
#include "vmm/builder.h"

namespace vmrun::binding {

namespace {
// The thread-safe function's queue is bounded; console output holds at most one entry
// of it (bytes gather in ConsoleBackPressure::waiting), so "drained" and "stopped"
// always find room.
constexpr size_t kMaxQueuedEvents = 16;
constexpr size_t kMaxWaitingConsoleBytes = 8 << 20;
}  // namespace

struct MachineBinding::Event {
  enum class Kind { Console, Stopped, Drained } kind;
  std::vector<uint8_t> bytes;
  StopRequest stop;
};

Napi::Function MachineBinding::define(Napi::Env env) {
  return DefineClass(env, "NativeMachine",
                     {
                         InstanceMethod<&MachineBinding::start>("start"),
                         InstanceMethod<&MachineBinding::pause>("pause"),
                         InstanceMethod<&MachineBinding::resume>("resume"),
                         InstanceMethod<&MachineBinding::stop>("stop"),
                         InstanceMethod<&MachineBinding::write_console>("writeConsole"),
                         InstanceMethod<&MachineBinding::set_console_input_open>("setConsoleInputOpen"),
                         InstanceMethod<&MachineBinding::stats>("stats"),
                         InstanceMethod<&MachineBinding::ports>("ports"),
                         InstanceMethod<&MachineBinding::gdb_address>("gdbAddress"),
                         InstanceMethod<&MachineBinding::guest_ram_mapping>("guestRamMapping"),
                         InstanceMethod<&MachineBinding::capture_state>("captureState"),
                         InstanceMethod<&MachineBinding::save_snapshot>("saveSnapshot"),
                         InstanceMethod<&MachineBinding::dispose>("dispose"),
                     });
}

MachineBinding::MachineBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MachineBinding>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "NativeMachine(config, onEvent)");
  Napi::Object cfg = info[0].As<Napi::Object>();
  int console_fd = -1;
  if (cfg.Has("consoleFd") && cfg.Get("consoleFd").IsNumber()) console_fd = cfg.Get("consoleFd").As<Napi::Number>().Int32Value();

  events_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "vmrun-machine-events", kMaxQueuedEvents, 1);
  events_.Unref(env);  // only a started machine keeps the process alive

  MachineCallbacks callbacks;
  if (console_fd >= 0) {
    callbacks.console = ConsoleOutput::fd_sink(console_fd);
  } else {
    callbacks.console = [this](std::vector<uint8_t>&& batch) { post_console(std::move(batch)); };
  }
  callbacks.stopped = [this](const StopRequest& r) {
    post(new Event{Event::Kind::Stopped, {}, r});
    release_events();
  };
  BootInfo boot_info;
  try {
    if (cfg.Has("restore") && cfg.Get("restore").IsObject()) {
      machine_ = MachineBuilder::restore(restore_config_from(cfg), std::move(callbacks));
      boot_info.kernel_format = get_string(cfg.Get("restore").As<Napi::Object>(), "kernelFormat", "linux-elf");
    } else {
      machine_ = MachineBuilder::boot(machine_config_from(cfg), std::move(callbacks), &boot_info);
      // Before the vCPUs start: the guest's first read must already wait for the host's input.
      if (cfg.Has("consoleInput") && cfg.Get("consoleInput").ToBoolean().Value()) machine_->set_console_input_open(true);
    }
  } catch (const std::exception& e) {
    release_events();
    throw_js(env, e);
  }
  info.This().As<Napi::Object>().Set("kernelFormat", boot_info.kernel_format);
}

MachineBinding::~MachineBinding() {
  machine_.reset();
  release_events();
}

void MachineBinding::post(Event* event) {
  std::lock_guard<std::mutex> lock(events_mu_);
  if (events_released_) {
    delete event;
    return;
  }
  auto pressure = console_pressure_;
  napi_status status = events_.NonBlockingCall(event, [pressure](Napi::Env env, Napi::Function fn, Event* ev) {
    std::unique_ptr<Event> owned(ev);
    uint64_t dropped_before = 0;
    if (ev->kind == Event::Kind::Console) {
      // Everything that gathered since the event was queued goes out in one call,
      // behind the marker for what was dropped before it.
      std::lock_guard<std::mutex> lock(pressure->mu);
      ev->bytes.swap(pressure->waiting);
      pressure->event_queued = false;
      dropped_before = pressure->dropped;
      pressure->dropped = 0;
    }
    if (!env || !fn) return;
    if (ev->kind == Event::Kind::Console) {
      uint64_t guest_bytes = ev->bytes.size();
      if (dropped_before > 0) {
        std::string marker = console_drop_marker(dropped_before);
        ev->bytes.insert(ev->bytes.begin(), marker.begin(), marker.end());
      }
      Napi::Value accepted = fn.Call({Napi::String::New(env, "console"), Napi::Buffer<uint8_t>::Copy(env, ev->bytes.data(), ev->bytes.size())});
      // false: the JS stream already holds too much nobody has read.
      if (accepted.IsBoolean() && !accepted.As<Napi::Boolean>().Value()) {
        std::lock_guard<std::mutex> lock(pressure->mu);
        pressure->dropped += dropped_before + guest_bytes;
      }
    } else if (ev->kind == Event::Kind::Stopped) {
      // Bytes dropped since the last delivery are accounted for before the end: the
      // marker is delivered even to a reader that is still behind (third argument).
      std::string marker;
      {
        std::lock_guard<std::mutex> lock(pressure->mu);
        if (pressure->dropped > 0) marker = console_drop_marker(pressure->dropped);
        pressure->dropped = 0;
      }
      if (!marker.empty())
        fn.Call({Napi::String::New(env, "console"), Napi::Buffer<char>::Copy(env, marker.data(), marker.size()), Napi::Boolean::New(env, true)});
      fn.Call({Napi::String::New(env, "stopped"), stop_request_to(env, ev->stop)});
    } else {
      fn.Call({Napi::String::New(env, "drained"), env.Undefined()});
    }
  });
  if (status != napi_ok) {
    // Only console batches can fill the queue (they leave room for the rest).
    if (event->kind == Event::Kind::Console) {
      std::lock_guard<std::mutex> plock(pressure->mu);
      pressure->event_queued = false;
    }
    delete event;
  }
}

void MachineBinding::post_console(std::vector<uint8_t>&& batch) {
  {
    ConsoleBackPressure& p = *console_pressure_;
    std::lock_guard<std::mutex> lock(p.mu);
    if (p.waiting.size() + batch.size() > kMaxWaitingConsoleBytes) {
      p.dropped += batch.size();
      return;
    }
    p.waiting.insert(p.waiting.end(), batch.begin(), batch.end());
    if (p.event_queued) return;
    p.event_queued = true;
  }
  post(new Event{Event::Kind::Console, {}, {}});
}

void MachineBinding::release_events() {
  std::lock_guard<std::mutex> lock(events_mu_);
  if (events_released_) return;
  events_released_ = true;
  events_.Release();
}

Napi::Value MachineBinding::start(const Napi::CallbackInfo& info) {
  if (!machine_) throw Napi::Error::New(info.Env(), "machine disposed");
  {
    std::lock_guard<std::mutex> lock(events_mu_);
    if (!events_released_) events_.Ref(info.Env());
  }
  machine_->start();
  return info.Env().Undefined();
}

Napi::Value MachineBinding::run_async(Napi::Env env, std::function<void(Machine&)> work, std::function<Napi::Value(Napi::Env)> result) {
  if (!machine_) throw Napi::Error::New(env, "machine disposed");
  Machine* m = machine_.get();
  busy_++;
  // The settle callback runs on the JS thread, where dispose() may have been deferred.
  auto done = [this] {
    if (--busy_ == 0 && dispose_pending_) release_machine();
  };
  return PromiseWorker::run(
      env, [m, work] { work(*m); },
      [result, done](Napi::Env e) {
        done();
        return result(e);
      },
      done);
}

Napi::Value MachineBinding::pause(const Napi::CallbackInfo& info) {
  int timeout_ms = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 5000;
  auto ok = std::make_shared<bool>(false);
  // Once parked, the console is flushed and a "drained" event queued behind the last
  // batch: JS sees every byte written before the pause before it sees the pause.
  return run_async(
      info.Env(),
      [this, timeout_ms, ok](Machine& m) {
        *ok = m.pause(PauseHolder::User, std::chrono::milliseconds(timeout_ms));
        m.flush_console();
        post(new Event{Event::Kind::Drained, {}, {}});
      },
      [ok](Napi::Env env) { return Napi::Boolean::New(env, *ok); });
}

Napi::Value MachineBinding::resume(const Napi::CallbackInfo& info) {
  if (machine_) machine_->resume(PauseHolder::User);
  return info.Env().Undefined();
}

Napi::Value MachineBinding::stop(const Napi::CallbackInfo& info) {
  if (machine_) machine_->stop();
  return info.Env().Undefined();
}

Napi::Value MachineBinding::write_console(const Napi::CallbackInfo& info) {
  if (!machine_ || info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "writeConsole(bytes: Uint8Array)");
  auto bytes = info[0].As<Napi::Uint8Array>();
  machine_->write_console(bytes.Data(), bytes.ByteLength());
  return info.Env().Undefined();
}

Napi::Value MachineBinding::set_console_input_open(const Napi::CallbackInfo& info) {
  if (!machine_ || info.Length() < 1 || !info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "setConsoleInputOpen(open: boolean)");
  machine_->set_console_input_open(info[0].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

Napi::Value MachineBinding::stats(const Napi::CallbackInfo& info) {
  if (!machine_) throw Napi::Error::New(info.Env(), "machine disposed");
  return stats_to(info.Env(), machine_->stats());
}

Napi::Value MachineBinding::gdb_address(const Napi::CallbackInfo& info) {
  if (!machine_) throw Napi::Error::New(info.Env(), "machine disposed");
  return Napi::String::New(info.Env(), machine_->gdb_address());
}

Napi::Value MachineBinding::guest_ram_mapping(const Napi::CallbackInfo& info) {
  if (!machine_) throw Napi::Error::New(info.Env(), "machine disposed");
  const GuestMemory& memory = machine_->memory();
  auto o = Napi::Object::New(info.Env());
  o.Set("address", Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(memory.host_base()))));
  o.Set("bytes", static_cast<double>(memory.ram_size()));
  return o;
}

Napi::Value MachineBinding::ports(const Napi::CallbackInfo& info) {
  if (!machine_) throw Napi::Error::New(info.Env(), "machine disposed");
  return port_forwards_to(info.Env(), machine_->published_ports());
}

Napi::Value MachineBinding::capture_state(const Napi::CallbackInfo& info) {
  auto state = std::make_shared<MachineState>();
  return run_async(
      info.Env(), [state](Machine& m) { *state = m.capture_state(); },
      [state](Napi::Env env) -> Napi::Value { return machine_state_to(env, *state); });
}

Napi::Value MachineBinding::save_snapshot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "saveSnapshot({fd, dataOffset, stop, level})");
  auto o = info[0].As<Napi::Object>();
  if (!o.Get("fd").IsNumber() || !o.Get("dataOffset").IsNumber()) throw Napi::TypeError::New(env, "saveSnapshot: fd and dataOffset must be numbers");
  int fd = o.Get("fd").As<Napi::Number>().Int32Value();
  uint64_t offset = static_cast<uint64_t>(o.Get("dataOffset").As<Napi::Number>().Int64Value());
  bool stop = o.Get("stop").ToBoolean();
  int level = o.Get("level").IsNumber() ? o.Get("level").As<Napi::Number>().Int32Value() : 1;
  auto capture = std::make_shared<SnapshotCapture>();
  return run_async(
      env, [=](Machine& m) { *capture = m.save_snapshot(fd, offset, stop, level); },
      [capture](Napi::Env e) -> Napi::Value { return snapshot_capture_to(e, *capture); });
}

void MachineBinding::release_machine() {
  dispose_pending_ = false;
  machine_.reset();
  release_events();
}

Napi::Value MachineBinding::dispose(const Napi::CallbackInfo& info) {
  // A pause or snapshot still running on the thread pool uses the machine: free it
  // when the last one settles.
  if (busy_ > 0) dispose_pending_ = true;
  else release_machine();
  return info.Env().Undefined();
}

}  // namespace vmrun::binding
