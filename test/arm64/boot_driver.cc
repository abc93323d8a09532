// vmrun-arm64-boot: boots an arm64 Linux Image on vmrun's KVM arm64 backend with the
// VMM's own parts (VcpuThread, the MMIO bus, the 16550 UART, the exit device, the
// arm64 loader and device tree), without Node: the test driver of the aarch64 harness
// until the addon is cross-built (node in the emulated L1 starts in 1-5 s; this starts
// in milliseconds, so the figures it prints are the VMM's, not Node's).
//
//   vmrun-arm64-boot --kernel IMAGE [--initrd FILE] [--cmdline TEXT] [--cpus N]
//                    [--memory MIB] [--timeout S] [--mark TEXT]
//
// The console goes to stdout; the driver's own lines to stderr, prefixed
// "arm64-boot:": set-up steps, when the console first showed --mark, and why the VM
// stopped. Exit status: 0 when the guest powered off (PSCI SYSTEM_OFF), the guest's
// status when it wrote one to the exit device, 124 on --timeout, 125 when vmrun or the
// guest failed.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "arch/aarch64/layout.h"
#include "arch/aarch64/vcpu.h"
#include "backend/hypervisor.h"
#include "common/error.h"
#include "common/file.h"
#include "devices/bus.h"
#include "devices/console_output.h"
#include "devices/legacy/exit_port.h"
#include "devices/legacy/uart_16550.h"
#include "loaders/linux/arm64_image.h"
#include "vcpu/vcpu_thread.h"
#include "vmm/irq_line.h"

using namespace vmrun;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string kernel, initrd, cmdline = "console=ttyS0", mark;
  int cpus = 1;
  uint64_t memory_mib = 256;
  int timeout_s = 600;
};

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void say(const std::string& line) { std::fprintf(stderr, "arm64-boot: %s\n", line.c_str()); }

[[noreturn]] void usage_error(const std::string& why) {
  say(why);
  say("usage: vmrun-arm64-boot --kernel IMAGE [--initrd FILE] [--cmdline TEXT] [--cpus N] [--memory MIB] [--timeout S] [--mark TEXT]");
  std::exit(125);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    auto number = [&](long lo, long hi) {
      std::string v = value();
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < lo || n > hi) usage_error(a + " " + v + ": expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
      return n;
    };
    if (a == "--kernel") o.kernel = value();
    else if (a == "--initrd") o.initrd = value();
    else if (a == "--cmdline") o.cmdline = value();
    else if (a == "--mark") o.mark = value();
    else if (a == "--cpus") o.cpus = static_cast<int>(number(1, aarch64::kMaxCpus));
    else if (a == "--memory") o.memory_mib = static_cast<uint64_t>(number(64, 64 * 1024));
    else if (a == "--timeout") o.timeout_s = static_cast<int>(number(1, 24 * 3600));
    else usage_error("unknown option " + a);
  }
  if (o.kernel.empty()) usage_error("no --kernel");
  if (o.memory_mib % 2) usage_error("--memory must be a multiple of 2 MiB");
  return o;
}

/** The machine as the vCPU threads see it: buses, memory, and where a stop request goes. */
class DriverHost : public VcpuHost {
 public:
  explicit DriverHost(const GuestMemory& memory) : memory_(memory) {}
  Bus& mmio() { return mmio_; }

  const Bus& port_bus() const override { return no_ports_; }
  const Bus& mmio_bus() const override { return mmio_; }
  const GuestMemory& memory() const override { return memory_; }
  PortIoHandler* port_io_handler() const override { return nullptr; }
  bool wait_while_paused(int, const std::function<void()>&) override { return !stop_requested(); }
  bool stop_requested() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_.has_value();
  }
  void vcpu_finished(int) override {}
  void entering_guest(int) override {}
  void count_exit(VcpuExit::Kind kind) override {
    std::lock_guard<std::mutex> lock(mu_);
    exits_[kind == VcpuExit::Kind::Mmio ? 0 : 1]++;
  }
  void request_stop(const StopRequest& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_) stop_ = r;
    stopped_.notify_all();
  }
  /** The first stop request, or none after `timeout`. */
  std::optional<StopRequest> wait_for_stop(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    stopped_.wait_for(lock, timeout, [&] { return stop_.has_value(); });
    return stop_;
  }
  void stop_now() { request_stop(StopRequest{}); }
  uint64_t mmio_exits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return exits_[0];
  }

 private:
  const GuestMemory& memory_;
  Bus mmio_, no_ports_;
  mutable std::mutex mu_;
  std::condition_variable stopped_;
  std::optional<StopRequest> stop_;
  uint64_t exits_[2] = {};
};

std::string describe(const StopRequest& r) {
  switch (r.kind) {
    case StopRequest::Kind::PowerOff: return "the guest powered off (PSCI SYSTEM_OFF)";
    case StopRequest::Kind::Reset: return "the guest asked for a reset (PSCI SYSTEM_RESET)";
    default: return r.detail;
  }
}

int run(const Options& o) {
  const auto start = Clock::now();
  std::vector<uint8_t> kernel = read_file(o.kernel, "kernel", 512ULL << 20);
  std::vector<uint8_t> initrd;
  if (!o.initrd.empty()) initrd = read_file(o.initrd, "initrd", o.memory_mib << 20);
  const double read_ms = ms_since(start);
  GuestMemory memory = GuestMemory::anonymous_at(aarch64::kRamBase, o.memory_mib << 20);

  auto hypervisor = open_hypervisor("");
  auto vm = hypervisor->create_vm();
  vm->map_memory(memory);  // RAM slots before the vGIC, as on x86
  vm->create_interrupt_controller();
  const double setup_vm_ms = ms_since(start);

  DriverHost host(memory);
  double mark_ms = -1;
  size_t matched = 0;  // how much of --mark the console has shown so far
  ConsoleOutput::Sink to_stdout = ConsoleOutput::fd_sink(STDOUT_FILENO);
  ConsoleOutput console([&](std::vector<uint8_t>&& batch) {
    for (uint8_t byte : batch) {
      if (mark_ms >= 0 || o.mark.empty()) break;
      matched = byte == static_cast<uint8_t>(o.mark[matched]) ? matched + 1 : (byte == static_cast<uint8_t>(o.mark[0]) ? 1 : 0);
      if (matched == o.mark.size()) mark_ms = ms_since(start);
    }
    to_stdout(std::move(batch));
  });
  host.mmio().add(aarch64::kUartBase, 8, std::make_shared<Uart16550>("uart0", std::make_shared<VmInterruptLine>(*vm, aarch64::kUartSpi), &console));
  host.mmio().add(aarch64::kExitDeviceBase, 4, std::make_shared<ExitPort>(&host));

  Arm64LinuxBootInput in{&kernel, o.kernel, o.initrd.empty() ? nullptr : &initrd, o.cmdline, o.cpus, 0};
  LoadedArm64Linux loaded = load_arm64_linux(in, memory);
  std::vector<std::unique_ptr<VcpuThread>> vcpus;
  for (int i = 0; i < o.cpus; i++) {
    auto vcpu = vm->create_vcpu(i, o.cpus, VcpuSetup::ForBoot);
    if (i == 0) arm64_vcpu(*vcpu).set_start_state(loaded.start);
    vcpus.push_back(std::make_unique<VcpuThread>(std::move(vcpu), host));
  }
  char line[512];
  std::snprintf(line, sizeof line, "set-up %.1f ms (reading kernel and initrd %.1f ms, VM+RAM+vGICv3 %.1f ms, loading and vCPUs %.1f ms); kernel at 0x%llx, initrd at 0x%llx, device tree at 0x%llx; %d vCPUs",
                ms_since(start), read_ms, setup_vm_ms - read_ms, ms_since(start) - setup_vm_ms, static_cast<unsigned long long>(loaded.kernel_address),
                static_cast<unsigned long long>(loaded.initrd_address), static_cast<unsigned long long>(loaded.device_tree_address), o.cpus);
  say(line);
  for (auto& v : vcpus) v->start();

  std::optional<StopRequest> stop = host.wait_for_stop(std::chrono::seconds(o.timeout_s));
  const double end_ms = ms_since(start);
  host.stop_now();
  for (auto& v : vcpus) v->kick();
  for (auto& v : vcpus) v->join();
  console.flush();
  if (!o.mark.empty()) {
    if (mark_ms >= 0) std::snprintf(line, sizeof line, "console showed \"%s\" at %.1f ms", o.mark.c_str(), mark_ms);
    else std::snprintf(line, sizeof line, "console never showed \"%s\"", o.mark.c_str());
    say(line);
  }
  if (!stop) {
    say("--timeout " + std::to_string(o.timeout_s) + " s expired; VM stopped");
    return 124;
  }
  std::snprintf(line, sizeof line, "%s at %.1f ms; %llu MMIO exits", describe(*stop).c_str(), end_ms, static_cast<unsigned long long>(host.mmio_exits()));
  say(line);
  switch (stop->kind) {
    case StopRequest::Kind::PowerOff: return 0;
    case StopRequest::Kind::ExitCode: return stop->exit_code;
    default: return 125;
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  try {
    return run(o);
  } catch (const VmrunError& e) {
    say(e.what());
    return 125;
  }
}
