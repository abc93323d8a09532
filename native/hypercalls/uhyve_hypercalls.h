// Serves a Hermit guest's uhyve hypercalls, versions 1 and 2 at once (their ports do
// not overlap), in native code on the vCPU's own thread: console output, exit, host
// files through GuestFiles, and the application's command line and environment.
// Guest pointers are checked against guest RAM (and the guest's page tables) before
// any access: a bad buffer gets -EFAULT; a parameter block outside RAM, which leaves
// nowhere to put a result, stops the guest with a message naming the hypercall.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "devices/console_input.h"
#include "devices/console_output.h"
#include "devices/device.h"
#include "hypercalls/exception_watch.h"
#include "hypercalls/guest_buffer.h"
#include "hypercalls/guest_files.h"
#include "memory/guest_memory.h"
#include "vcpu/port_io_handler.h"

namespace vmrun::uhyve {

/** The application's argv (argv[0] = the kernel path, as uhyve passes it) and its environment ("K=V"). */
struct GuestProgram {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  /** Trace the handover on stderr: what Cmdsize reported and what Cmdval left in guest memory (vmrun boot --debug). */
  bool trace = false;
};

class UhyveHypercalls : public PortIoHandler {
 public:
  UhyveHypercalls(const GuestMemory& memory, VmControl& control, ConsoleOutput& console, std::shared_ptr<ConsoleInput> input,
                  std::unique_ptr<GuestFiles> files, GuestProgram program);
  bool handle(Vcpu& vcpu, const VcpuExit& exit) override;
  /** The guest's open host files and private files (GuestFilesState). */
  std::string state_name() const override { return kStateName; }
  StateBlob save() override;
  void restore(const StateBlob& state) override;
  static constexpr const char* kStateName = "uhyve-files";

  /** True for a port that is a v1 or v2 hypercall. */
  static bool is_hypercall_port(uint16_t port);

 private:
  void handle_v1(Vcpu& vcpu, uint16_t port, uint64_t gpa, uint8_t byte);
  void handle_v2(Vcpu& vcpu, uint16_t port, uint64_t arg);
  /** The kernel's own console channel (UART port, serial hypercalls): also scanned for exception reports. */
  void kernel_console(const uint8_t* data, size_t len);
  void console_write(const HostSpans& spans);
  int64_t write_to(Vcpu& vcpu, int32_t fd, const std::optional<HostSpans>& spans);
  int64_t read_from(int32_t fd, const std::optional<HostSpans>& spans);
  /** Console input into guest memory: waits for input (fd 0) or takes what is queued (serial reads). */
  int64_t read_console(const HostSpans& spans, bool wait);
  int32_t open(uint64_t name, int32_t flags, int32_t mode);
  int32_t unlink(uint64_t name);
  void fill_cmdsize(uint64_t gpa, Vcpu& vcpu);
  void copy_cmdval(uint64_t gpa, Vcpu& vcpu);
  bool copy_strings(uint64_t array_gpa, const std::vector<std::string>& strings);
  /** With program_.trace: each string as the guest now holds it, read back from where the guest asked for it. */
  void trace_strings(const char* what, uint64_t array_gpa, size_t count) const;
  void exit_guest(int32_t code, Vcpu& vcpu);
  /** Stops the guest: the hypercall's own parameter block is unusable. */
  void refuse(Vcpu& vcpu, const std::string& what, uint16_t port, uint64_t address);

  template <typename T>
  bool load(Vcpu& vcpu, const char* name, uint16_t port, uint64_t gpa, T& out) {
    if (memory_.read(gpa, &out, sizeof(T))) return true;
    refuse(vcpu, name, port, gpa);
    return false;
  }
  template <typename T>
  void store(uint64_t gpa, const T& value) {
    memory_.write(gpa, &value, sizeof(T));  // checked when loaded; the range cannot have moved
  }

  const GuestMemory& memory_;
  VmControl& control_;
  ConsoleOutput& console_;
  std::shared_ptr<ConsoleInput> input_;
  std::unique_ptr<GuestFiles> files_;
  GuestProgram program_;
  size_t application_env_count_;  // program_.env beyond this is padding
  ExceptionWatch exception_watch_;
};

}  // namespace vmrun::uhyve
