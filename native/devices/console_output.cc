#include "devices/console_output.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace vmrun {

// How long a full console pipe may stall the writer thread before a batch is dropped.
static constexpr int kWritableWaitMs = 10000;

std::string console_drop_marker(uint64_t bytes) {
  return "\r\n[vmrun: " + std::to_string(bytes) + " bytes of console output dropped: the reader fell behind]\r\n";
}

ConsoleOutput::ConsoleOutput(Sink sink) : sink_(std::move(sink)), writer_([this] { run(); }) {}

ConsoleOutput::~ConsoleOutput() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

void ConsoleOutput::append(const uint8_t* data, size_t len) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    total_ += len;
    // A runaway guest must not grow host memory while the sink is slow.
    if (pending_.size() + len > kMaxPending) {
      if (dropped_ == 0) drop_at_ = pending_.size();
      dropped_ += len;
      dropped_total_ += len;
      return;
    }
    pending_.insert(pending_.end(), data, data + len);
  }
  wake_.notify_one();
}

uint64_t ConsoleOutput::total_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

uint64_t ConsoleOutput::dropped_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_total_;
}

void ConsoleOutput::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  drained_.wait_for(lock, std::chrono::seconds(5), [this] { return pending_.empty() && !writing_; });
}

void ConsoleOutput::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    if (pending_.empty() && stopping_) break;
    std::vector<uint8_t> batch;
    if (dropped_ > 0) {
      // The marker goes where the first bytes were lost.
      std::string marker = console_drop_marker(dropped_);
      dropped_ = 0;
      pending_.insert(pending_.begin() + static_cast<std::ptrdiff_t>(drop_at_), marker.begin(), marker.end());
    }
    if (pending_.size() <= kMaxBatch) {
      batch.swap(pending_);
    } else {
      batch.assign(pending_.begin(), pending_.begin() + kMaxBatch);
      pending_.erase(pending_.begin(), pending_.begin() + kMaxBatch);
    }
    writing_ = true;
    lock.unlock();
    sink_(std::move(batch));
    lock.lock();
    writing_ = false;
    if (pending_.empty()) drained_.notify_all();
  }
  drained_.notify_all();
}

ConsoleOutput::Sink ConsoleOutput::fd_sink(int fd) {
  return [fd](std::vector<uint8_t>&& batch) {
    size_t done = 0;
    while (done < batch.size()) {
      ssize_t n = ::write(fd, batch.data() + done, batch.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        // Node makes a pipe on fd 1 non-blocking (the file description is shared):
        // a full pipe means "wait for the reader", not "drop the guest's output".
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, kWritableWaitMs) > 0 && !(p.revents & (POLLERR | POLLHUP | POLLNVAL))) continue;
        return;  // the reader is gone or stuck: the guest keeps running
      }
      if (n <= 0) return;  // the terminal went away: the guest keeps running
      done += static_cast<size_t>(n);
    }
  };
}

}  // namespace vmrun
