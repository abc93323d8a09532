#include "hypercalls/guest_buffer.h"

#include <cerrno>
#include <cstring>

#include "arch/x86_64/page_walk.h"

namespace vmrun::uhyve {

namespace {
constexpr uint64_t kPageSize = 0x1000;

void append(HostSpans& spans, uint8_t* host, size_t len) {
  // Guest RAM is one host mapping, so pages that are adjacent for the guest are
  // usually adjacent here too: merge them to keep readv/writev short.
  if (!spans.empty()) {
    iovec& last = spans.back();
    if (static_cast<uint8_t*>(last.iov_base) + last.iov_len == host) {
      last.iov_len += len;
      return;
    }
  }
  spans.push_back({host, len});
}
}  // namespace

std::optional<HostSpans> physical_spans(const GuestMemory& memory, uint64_t gpa, uint64_t len) {
  if (len == 0) return HostSpans{};
  uint8_t* host = memory.range(gpa, len);
  if (!host) return std::nullopt;
  return HostSpans{{host, len}};
}

std::optional<HostSpans> virtual_spans(const GuestMemory& memory, const x86::PagingState& paging, uint64_t va, uint64_t len) {
  HostSpans spans;
  uint64_t done = 0;
  while (done < len) {
    uint64_t address = va + done;
    if (address < va) return std::nullopt;  // wrapped around the address space
    auto physical = x86::translate(memory, paging, address);
    if (!physical) return std::nullopt;
    uint64_t chunk = std::min(kPageSize - (address & (kPageSize - 1)), len - done);
    uint8_t* host = memory.range(*physical, chunk);
    if (!host) return std::nullopt;
    append(spans, host, chunk);
    done += chunk;
  }
  return spans;
}

std::optional<std::string> read_c_string(const GuestMemory& memory, uint64_t gpa, size_t max_len, int& error) {
  std::string out;
  for (size_t i = 0; i <= max_len; i++) {
    const uint8_t* p = gpa + i < gpa ? nullptr : memory.range(gpa + i, 1);
    if (!p) {
      error = EFAULT;
      return std::nullopt;
    }
    if (*p == 0) return out;
    out.push_back(static_cast<char>(*p));
  }
  error = ENAMETOOLONG;
  return std::nullopt;
}

}  // namespace vmrun::uhyve
