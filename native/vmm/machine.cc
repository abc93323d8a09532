#include "vmm/machine.h"

#include "common/error.h"
#include "devices/virtio/mmio_transport.h"

#include <time.h>

namespace vmrun {

Machine::~Machine() {
  if (gdb_) gdb_->shut_down();
  stop();
  for (auto& v : vcpus_) v->join();
  // The console writer drains before the callbacks' owner goes away.
  console_.reset();
}

void Machine::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
  started_ = true;
  started_at_ = std::chrono::steady_clock::now();
  if (gdb_) {
    // Every vCPU parks before its first instruction until the debugger lets it run.
    pause_held_[static_cast<size_t>(PauseHolder::Debugger)] = true;
    debug_hold_.assign(vcpus_.size(), 0);
    gdb_->start();
  }
  for (auto& v : vcpus_) v->start();
}

bool Machine::paused_locked() const {
  for (bool held : pause_held_)
    if (held) return true;
  return false;
}

bool Machine::pause(PauseHolder holder, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  pause_held_[static_cast<size_t>(holder)] = true;
  for (auto& v : vcpus_) v->kick();
  if (state_changed_.wait_for(lock, timeout, [&] { return parked_ + finished_ >= static_cast<int>(vcpus_.size()); })) {
    // Device threads stop touching guest memory too, so a snapshot sees it still.
    for (const auto& bus : {&port_bus_, &mmio_bus_})
      for (const auto& d : bus->devices()) d->pause_work();
    return true;
  }
  // A failed pause must not leave the vCPUs that did park frozen for good.
  pause_held_[static_cast<size_t>(holder)] = false;
  state_changed_.notify_all();
  return false;
}

void Machine::resume(PauseHolder holder) {
  std::lock_guard<std::mutex> lock(mu_);
  pause_held_[static_cast<size_t>(holder)] = false;
  // Device threads go on only when the last holder let go, as the vCPUs do.
  if (!paused_locked())
    for (const auto& bus : {&port_bus_, &mmio_bus_})
      for (const auto& d : bus->devices()) d->resume_work();
  state_changed_.notify_all();
}

bool Machine::wait_while_paused(int vcpu, const std::function<void()>& before_park) {
  std::unique_lock<std::mutex> lock(mu_);
  auto held = [&] { return paused_locked() || (static_cast<size_t>(vcpu) < debug_hold_.size() && debug_hold_[static_cast<size_t>(vcpu)]); };
  if (!held()) return !stop_.load();
  // Unlocked: completing the I/O may dispatch a device access that asks for a stop.
  lock.unlock();
  before_park();
  lock.lock();
  parked_++;
  state_changed_.notify_all();
  state_changed_.wait(lock, [&] { return !held() || stop_.load(); });
  parked_--;
  return !stop_.load();
}

void Machine::hold_for_debugger() {
  std::lock_guard<std::mutex> lock(mu_);
  pause_held_[static_cast<size_t>(PauseHolder::Debugger)] = true;
  for (auto& v : vcpus_) v->kick();
}

void Machine::release_for_debugger(const std::vector<bool>& run) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < debug_hold_.size() && i < run.size(); i++) debug_hold_[i] = run[i] ? 0 : 1;
  pause_held_[static_cast<size_t>(PauseHolder::Debugger)] = false;
  if (!paused_locked())
    for (const auto& bus : {&port_bus_, &mmio_bus_})
      for (const auto& d : bus->devices()) d->resume_work();
  state_changed_.notify_all();
}

bool Machine::debug_exit(int vcpu, const VcpuExit& exit) { return gdb_ && gdb_->on_debug_exit(vcpu, exit); }

void Machine::stop() {
  StopRequest r;
  r.kind = StopRequest::Kind::Killed;
  r.detail = "stopped by the host";
  request_stop(r);
}

void Machine::request_stop(const StopRequest& request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_.load()) return;  // the first reason wins
    stop_request_ = request;
    stop_.store(true, std::memory_order_release);
    stopped_at_ = std::chrono::steady_clock::now();
    state_changed_.notify_all();
  }
  console_input_->shut_down();  // a vCPU waiting for console input must see the stop too
  for (auto& v : vcpus_) v->kick();
}

void Machine::vcpu_finished(int) {
  StopRequest final_request;
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished_++;
    state_changed_.notify_all();
    if (finished_ < static_cast<int>(vcpus_.size())) return;
    final_request = stop_request_;
  }
  // Output the guest wrote before it stopped goes out before the exit is reported.
  console_->flush();
  if (gdb_) gdb_->machine_stopped(final_request);
  if (callbacks_.stopped) callbacks_.stopped(final_request);
}

void Machine::count_exit(VcpuExit::Kind kind) {
  size_t i = static_cast<size_t>(kind);
  if (i < exit_counts_.size()) exit_counts_[i].fetch_add(1, std::memory_order_relaxed);
}

void Machine::write_console(const uint8_t* data, size_t len) {
  // A Hermit guest reads its console through hypercalls; everything else through the UART.
  if (port_io_handler_) console_input_->push(data, len);
  else uart_->receive(data, len);
}

MachineState Machine::capture_state() {
  MachineState s;
  if (vm_->state_precedes_vcpus()) s.vm = vm_->save_state();
  for (auto& v : vcpus_) s.vcpus.push_back(v->vcpu().save_state());
  if (!vm_->state_precedes_vcpus()) s.vm = vm_->save_state();
  for (const auto& bus : {&port_bus_, &mmio_bus_})
    for (const auto& d : bus->devices()) s.devices.emplace_back(d->name(), d->save());
  if (port_io_handler_ && !port_io_handler_->state_name().empty())
    s.devices.emplace_back(port_io_handler_->state_name(), port_io_handler_->save());
  return s;
}

void Machine::restore_state(const MachineState& s, bool catch_up_wall_clock) {
  if (s.vcpus.size() != vcpus_.size())
    throw VmrunError(ErrorCode::Snapshot, "the snapshot has " + std::to_string(s.vcpus.size()) + " vCPUs, the machine " + std::to_string(vcpus_.size()));
  // Every vCPU's state is decoded and checked against this host (CPU features, TSC)
  // before any is applied: an incompatible snapshot changes nothing.
  std::vector<std::unique_ptr<LoadedVcpuState>> loaded;
  for (size_t i = 0; i < vcpus_.size(); i++) loaded.push_back(vcpus_[i]->vcpu().load_state(s.vcpus[i]));
  if (vm_->state_precedes_vcpus()) vm_->restore_state(s.vm, catch_up_wall_clock);
  for (size_t i = 0; i < vcpus_.size(); i++) vcpus_[i]->vcpu().restore_state(*loaded[i]);
  if (!vm_->state_precedes_vcpus()) vm_->restore_state(s.vm, catch_up_wall_clock);
  std::map<std::string, std::shared_ptr<Device>> by_name;
  for (const auto& bus : {&port_bus_, &mmio_bus_})
    for (const auto& d : bus->devices()) by_name[d->name()] = d;
  for (const auto& [name, blob] : s.devices) {
    if (port_io_handler_ && name == port_io_handler_->state_name()) {
      port_io_handler_->restore(blob);
      continue;
    }
    auto it = by_name.find(name);
    if (it == by_name.end()) throw VmrunError(ErrorCode::Snapshot, "the snapshot holds state for a device this machine lacks: " + name);
    it->second->restore(blob);
  }
}

static const char* exit_kind_name(size_t i) {
  static const char* names[] = {"port-io", "mmio", "halt", "shutdown", "system-reset", "system-shutdown",
                                "emulation-failure", "internal-error", "fail-entry", "interrupted", "unknown", "debug"};
  return i < sizeof(names) / sizeof(names[0]) ? names[i] : "other";
}

void Machine::entering_guest(int vcpu) {
  if (vcpu != 0) return;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t expected = 0;
  first_entry_ns_.compare_exchange_strong(expected, static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec);
}

SnapshotCapture Machine::save_snapshot(int fd, uint64_t data_offset, bool stop_after, int zstd_level) {
  using clock = std::chrono::steady_clock;
  // A second save waits for the first: both would hold and release the one snapshot pause.
  std::lock_guard<std::mutex> one_save(save_mu_);
  if (stop_requested()) throw VmrunError(ErrorCode::Usage, "the machine has stopped: there is nothing left to save");
  if (!pause(PauseHolder::Snapshot, std::chrono::seconds(5))) throw VmrunError(ErrorCode::Guest, "the vCPUs did not stop within 5 s for the snapshot");
  SnapshotCapture out;
  auto t0 = clock::now();
  try {
    out.state = capture_state();
    // When the guest goes on running, its pages are copied out now; when it stops,
    // they are compressed straight from guest memory.
    RamCapture ram = capture_ram(memory_, !stop_after);
    out.paused_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    // A guest that stops stays paused until its pages are written: stopping first
    // would let the host release its memory while it is being read.
    if (!stop_after) resume(PauseHolder::Snapshot);
    auto t1 = clock::now();
    out.data_length = write_ram_chunks(ram, memory_, fd, data_offset, zstd_level);
    out.write_ms = std::chrono::duration<double, std::milli>(clock::now() - t1).count();
    if (stop_after) stop();
    out.chunks = std::move(ram.chunks);
    out.touched_pages = ram.touched_pages;
  } catch (...) {
    resume(PauseHolder::Snapshot);
    throw;
  }
  return out;
}

MachineStats Machine::stats() const {
  MachineStats s;
  s.first_entry_ns = first_entry_ns_.load();
  s.setup_ms = setup_ms_;
  for (size_t i = 0; i < exit_counts_.size(); i++) {
    uint64_t n = exit_counts_[i].load(std::memory_order_relaxed);
    if (n) s.exits[exit_kind_name(i)] = n;
  }
  s.console_bytes = console_ ? console_->total_bytes() : 0;
  for (const auto& t : virtio_) {
    auto f = t->failures();
    s.virtio_failures.push_back({t->name(), f.count, f.last});
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) {
    auto end = stop_.load() ? stopped_at_ : std::chrono::steady_clock::now();
    s.run_seconds = std::chrono::duration<double>(end - started_at_).count();
  }
  return s;
}

}  // namespace vmrun
