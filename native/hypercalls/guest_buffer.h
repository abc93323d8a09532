// Checked views of guest buffers for hypercalls: every byte a hypercall touches is
// resolved through GuestMemory (and, for virtual addresses, the guest's own page
// tables) before any access, so a hostile pointer yields "no buffer" (-EFAULT for the
// guest), never a host fault.
#pragma once
#include <sys/uio.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arch/x86_64/cpu_state.h"
#include "memory/guest_memory.h"

namespace vmrun::uhyve {

/** Host spans of a guest buffer, in order; together they cover the whole buffer. */
using HostSpans = std::vector<iovec>;

/** The largest transfer one hypercall performs; longer requests are served short, as POSIX allows. */
constexpr uint64_t kMaxTransfer = 64ULL << 20;

/** [gpa, gpa+len) of guest-physical RAM, or nullopt if any byte lies outside RAM. */
std::optional<HostSpans> physical_spans(const GuestMemory& memory, uint64_t gpa, uint64_t len);

/** [va, va+len) through the guest's page tables, or nullopt if any page is unmapped or not RAM. */
std::optional<HostSpans> virtual_spans(const GuestMemory& memory, const x86::PagingState& paging, uint64_t va, uint64_t len);

/**
 * The NUL-terminated string at guest-physical `gpa`, at most `max_len` bytes before
 * the NUL; else nullopt with `error` = EFAULT (outside RAM) or ENAMETOOLONG.
 */
std::optional<std::string> read_c_string(const GuestMemory& memory, uint64_t gpa, size_t max_len, int& error);

}  // namespace vmrun::uhyve
