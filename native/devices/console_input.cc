#include "devices/console_input.h"

#include <algorithm>

namespace vmrun {

void ConsoleInput::push(const uint8_t* data, size_t len) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t room = kMaxQueued - std::min(kMaxQueued, queued_.size());
    queued_.insert(queued_.end(), data, data + std::min(len, room));
  }
  readable_.notify_all();
}

void ConsoleInput::set_source_open(bool open) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    source_open_ = open;
  }
  readable_.notify_all();
}

size_t ConsoleInput::take_locked(uint8_t* out, size_t max) {
  size_t n = std::min(max, queued_.size());
  std::copy_n(queued_.begin(), n, out);
  queued_.erase(queued_.begin(), queued_.begin() + static_cast<std::ptrdiff_t>(n));
  return n;
}

size_t ConsoleInput::take(uint8_t* out, size_t max) {
  std::lock_guard<std::mutex> lock(mu_);
  return take_locked(out, max);
}

size_t ConsoleInput::read(uint8_t* out, size_t max) {
  std::unique_lock<std::mutex> lock(mu_);
  readable_.wait(lock, [this] { return !queued_.empty() || !source_open_ || shut_down_; });
  return take_locked(out, max);
}

void ConsoleInput::shut_down() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
  }
  readable_.notify_all();
}

}  // namespace vmrun
