// Console output on its way to the host: batching, the bound on what waits for a slow
// sink, and the counted marker that replaces what was dropped.
#include <condition_variable>
#include <mutex>
#include <string>

#include "check.h"
#include "devices/console_output.h"

using namespace vmrun;

namespace {

/** A sink that holds its first batch until released: a reader that fell behind. */
struct StalledSink {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  bool entered = false;
  std::string received;
  size_t largest_batch = 0;
  ConsoleOutput::Sink sink() {
    return [this](std::vector<uint8_t>&& batch) {
      std::unique_lock<std::mutex> lock(mu);
      entered = true;
      cv.notify_all();
      cv.wait(lock, [this] { return released; });
      largest_batch = std::max(largest_batch, batch.size());
      received.append(batch.begin(), batch.end());
    };
  }
  void wait_entered() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return entered; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu);
    released = true;
    cv.notify_all();
  }
};

}  // namespace

TEST("console output: past the pending bound, bytes are dropped, counted and marked where they were lost") {
  StalledSink s;
  ConsoleOutput out(s.sink());
  const std::string first = "first line\n";
  out.append(reinterpret_cast<const uint8_t*>(first.data()), first.size());
  // The writer holds "first line" in the stalled sink; fill the pending buffer exactly.
  s.wait_entered();
  std::vector<uint8_t> chunk(64 << 10, 'x');
  for (size_t i = 0; i < ConsoleOutput::kMaxPending / chunk.size(); i++) out.append(chunk.data(), chunk.size());
  const std::string lost = "these bytes are lost";
  out.append(reinterpret_cast<const uint8_t*>(lost.data()), lost.size());
  const std::string after = "after the gap\n";
  s.release();
  out.flush();
  out.append(reinterpret_cast<const uint8_t*>(after.data()), after.size());
  out.flush();
  std::lock_guard<std::mutex> lock(s.mu);
  const std::string marker = console_drop_marker(lost.size());
  CHECK(marker.find("20 bytes of console output dropped") != std::string::npos);
  CHECK_EQ(s.received.find(lost), std::string::npos);
  CHECK_EQ(s.received.size(), first.size() + ConsoleOutput::kMaxPending + marker.size() + after.size());
  CHECK_EQ(s.received.find(marker), first.size() + ConsoleOutput::kMaxPending);
  CHECK_EQ(out.dropped_bytes(), lost.size());
  CHECK_EQ(out.total_bytes(), first.size() + ConsoleOutput::kMaxPending + lost.size() + after.size());
  CHECK(s.largest_batch <= ConsoleOutput::kMaxBatch);
}

TEST("console output: with a sink that keeps up, nothing is dropped and order is kept") {
  std::string received;
  std::mutex mu;
  {
    ConsoleOutput out([&](std::vector<uint8_t>&& batch) {
      std::lock_guard<std::mutex> lock(mu);
      received.append(batch.begin(), batch.end());
    });
    for (int i = 0; i < 1000; i++) {
      std::string line = std::to_string(i) + "\n";
      out.append(reinterpret_cast<const uint8_t*>(line.data()), line.size());
    }
    out.flush();
    CHECK_EQ(out.dropped_bytes(), 0u);
  }
  std::string expected;
  for (int i = 0; i < 1000; i++) expected += std::to_string(i) + "\n";
  CHECK(received == expected);
}
