#include "hypercalls/exception_watch.h"

namespace vmrun::uhyve {

namespace {
// A line longer than this is not a report worth quoting whole.
constexpr size_t kMaxLine = 240;
}  // namespace

ExceptionWatch::ExceptionWatch(VmControl& control, std::chrono::milliseconds grace) : control_(control), grace_(grace) {}

ExceptionWatch::~ExceptionWatch() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quitting_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ExceptionWatch::is_exception_report(const std::string& line) {
  // Hermit's handlers (arch/x86_64/kernel/interrupts.rs): "Divide Error (#DE) Exception: ...",
  // "General Protection (#GP) Exception: ...", "Page fault (#PF)!", "... is an exception with error code".
  size_t tag = line.find("(#");
  if (tag != std::string::npos && line.find(") Exception", tag) != std::string::npos) return true;
  return line.find("Page fault (#PF)!") != std::string::npos;
}

void ExceptionWatch::console(const uint8_t* data, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!report_.empty()) return;  // one report is enough
  for (size_t i = 0; i < len; i++) {
    char c = static_cast<char>(data[i]);
    if (c != '\n') {
      // Printable ASCII only: the report ends up in vmrun's one-line error message.
      if (line_.size() < kMaxLine && c >= 0x20 && c < 0x7f) line_ += c;
      continue;
    }
    if (is_exception_report(line_)) {
      report_ = line_;
      thread_ = std::thread([this] { run(); });
      return;
    }
    line_.clear();
  }
}

void ExceptionWatch::progress() {
  std::lock_guard<std::mutex> lock(mu_);
  progress_++;
}

void ExceptionWatch::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    uint64_t seen = progress_;
    if (changed_.wait_for(lock, grace_, [this] { return quitting_; })) return;
    if (progress_ != seen) continue;  // still making hypercalls: it may yet end by itself
    StopRequest r;
    r.kind = StopRequest::Kind::GuestError;
    r.detail = "the Hermit kernel reported a CPU exception (" + report_ + ") and made no hypercall in the " +
               std::to_string(grace_.count() / 1000) + " s after it";
    lock.unlock();
    control_.request_stop(r);
    return;
  }
}

}  // namespace vmrun::uhyve
