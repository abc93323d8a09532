// Host input for a guest console that is read through hypercalls (Hermit's fd 0 and
// uhyve's serial-read calls) rather than through an emulated UART: a bounded queue
// the host fills and vCPU threads drain, in native code.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>

namespace vmrun {

class ConsoleInput {
 public:
  /** Queued bytes beyond this are dropped: a host that types faster than the guest reads must not grow memory. */
  static constexpr size_t kMaxQueued = 1 << 20;

  void push(const uint8_t* data, size_t len);
  /**
   * Whether a host input source is attached (an interactive console). While it is,
   * a read with nothing queued waits for input; once it ends, reads see end of input.
   */
  void set_source_open(bool open);
  /** Takes up to `max` queued bytes without waiting; 0 when nothing is queued. */
  size_t take(uint8_t* out, size_t max);
  /**
   * Takes up to `max` bytes, waiting while the source is open and nothing is queued;
   * 0 means end of input (no source, the source ended, or the machine is stopping).
   */
  size_t read(uint8_t* out, size_t max);
  /** Releases every waiting reader for good (the machine is stopping). */
  void shut_down();

 private:
  size_t take_locked(uint8_t* out, size_t max);
  std::mutex mu_;
  std::condition_variable readable_;
  std::deque<uint8_t> queued_;
  bool source_open_ = false;
  bool shut_down_ = false;
};

}  // namespace vmrun
