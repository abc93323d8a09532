// Guest console output on its way to the host. vCPU threads append bytes (never
// blocking on the host side); one writer thread hands whatever has accumulated to the
// sink in a single batch. That batching is what keeps the cost per guest byte off
// the Node event loop: one crossing per batch, not per byte.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vmrun {

/**
 * What stands in the output where `bytes` of it were dropped because the host fell too
 * far behind (docs/console-output.md): the console is a log, and a guest never waits for
 * its reader.
 */
std::string console_drop_marker(uint64_t bytes);

class ConsoleOutput {
 public:
  /** Receives each batch on the writer thread. */
  using Sink = std::function<void(std::vector<uint8_t>&& batch)>;

  explicit ConsoleOutput(Sink sink);
  ~ConsoleOutput();
  ConsoleOutput(const ConsoleOutput&) = delete;
  ConsoleOutput& operator=(const ConsoleOutput&) = delete;

  void append(const uint8_t* data, size_t len);
  /** Waits (bounded) until everything appended so far reached the sink. */
  void flush();
  /** Total bytes appended since creation (for stats and tests). */
  uint64_t total_bytes() const;
  /** Bytes dropped because more than kMaxPending waited for the sink. */
  uint64_t dropped_bytes() const;

  /** The most bytes waiting for the sink; past it, output is dropped and counted. */
  static constexpr size_t kMaxPending = 8 << 20;
  /** The most bytes one sink call receives, so a slow consumer holds bounded batches. */
  static constexpr size_t kMaxBatch = 64 << 10;

  /** A sink that writes each batch to a host fd (the CLI's terminal). */
  static Sink fd_sink(int fd);

 private:
  void run();
  Sink sink_;
  mutable std::mutex mu_;
  std::condition_variable wake_, drained_;
  std::vector<uint8_t> pending_;
  bool writing_ = false;
  bool stopping_ = false;
  uint64_t total_ = 0;
  uint64_t dropped_ = 0;           // since the last marker went out
  size_t drop_at_ = 0;             // where in pending_ the marker goes
  uint64_t dropped_total_ = 0;
  std::thread writer_;
};

}  // namespace vmrun
