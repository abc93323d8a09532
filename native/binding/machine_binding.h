// The JS class NativeMachine: boots a Machine and forwards its controls. Guest events
// (console batches, the final stop) reach JS through one thread-safe function, so
// they arrive in the order the machine produced them.
#pragma once
#include <napi.h>

#include <memory>
#include <functional>
#include <mutex>

#include "vmm/machine.h"

namespace vmrun::binding {

class MachineBinding : public Napi::ObjectWrap<MachineBinding> {
 public:
  static Napi::Function define(Napi::Env env);
  /** new NativeMachine(config, onEvent): boots (kernel loaded, vCPUs created, not started). */
  explicit MachineBinding(const Napi::CallbackInfo& info);
  ~MachineBinding() override;

 private:
  struct Event;
  void post(Event* event);
  /** Queues a console batch, or counts it as dropped when JS is that far behind. */
  void post_console(std::vector<uint8_t>&& batch);
  void release_events();

  Napi::Value start(const Napi::CallbackInfo& info);
  Napi::Value pause(const Napi::CallbackInfo& info);
  Napi::Value resume(const Napi::CallbackInfo& info);
  Napi::Value stop(const Napi::CallbackInfo& info);
  Napi::Value write_console(const Napi::CallbackInfo& info);
  Napi::Value set_console_input_open(const Napi::CallbackInfo& info);
  Napi::Value stats(const Napi::CallbackInfo& info);
  Napi::Value gdb_address(const Napi::CallbackInfo& info);
  Napi::Value ports(const Napi::CallbackInfo& info);
  /** {address, bytes}: where guest RAM is mapped in this process (for /proc/self/smaps accounting). */
  Napi::Value guest_ram_mapping(const Napi::CallbackInfo& info);
  Napi::Value capture_state(const Napi::CallbackInfo& info);
  Napi::Value save_snapshot(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  /** Runs blocking work on the thread pool; the machine is not freed while it runs. */
  Napi::Value run_async(Napi::Env env, std::function<void(Machine&)> work, std::function<Napi::Value(Napi::Env)> result);
  void release_machine();

  std::unique_ptr<Machine> machine_;
  int busy_ = 0;               // async operations in flight (JS thread only)
  bool dispose_pending_ = false;
  Napi::ThreadSafeFunction events_;
  std::mutex events_mu_;
  bool events_released_ = false;
  // Back-pressure (docs/console-output.md): console bytes wait here for the JS thread,
  // at most kMaxWaitingConsoleBytes of them, with at most one "console" event queued to
  // take them all; beyond that, and for bytes JS refuses (its stream holds too much
  // unread), output is dropped, counted, and a marker goes out with the next bytes.
  // Shared with queued events, which may run after this object is gone.
  struct ConsoleBackPressure {
    std::mutex mu;
    std::vector<uint8_t> waiting;
    bool event_queued = false;
    uint64_t dropped = 0;  // bytes dropped since the last marker went out
  };
  std::shared_ptr<ConsoleBackPressure> console_pressure_ = std::make_shared<ConsoleBackPressure>();
};

}  // namespace vmrun::binding
