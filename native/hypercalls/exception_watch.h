// Bounds a Hermit guest that reported a CPU exception and then went quiet. Hermit's
// exception handlers print the exception and abort the task that took it; the kernel
// then idles (HLT) forever unless another task ends the program, and an idle vCPU
// never leaves KVM_RUN. This watches the kernel's console for such a report and,
// once one was seen, stops the guest if no hypercall follows within a grace period.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "devices/device.h"

namespace vmrun::uhyve {

class ExceptionWatch {
 public:
  ExceptionWatch(VmControl& control, std::chrono::milliseconds grace);
  ~ExceptionWatch();
  ExceptionWatch(const ExceptionWatch&) = delete;
  ExceptionWatch& operator=(const ExceptionWatch&) = delete;

  /** Console bytes from the kernel, scanned line by line for an exception report. */
  void console(const uint8_t* data, size_t len);
  /** A hypercall: the guest is making progress. */
  void progress();

  /** Whether a console line is one of Hermit's exception reports ("General Protection (#GP) Exception: ..."). */
  static bool is_exception_report(const std::string& line);

 private:
  void run();
  VmControl& control_;
  const std::chrono::milliseconds grace_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::string line_;    // the console line being assembled (bounded)
  std::string report_;  // the first exception report seen, "" before
  uint64_t progress_ = 0;
  bool quitting_ = false;
  std::thread thread_;  // started at the first report
};

}  // namespace vmrun::uhyve
