// Guest-virtual to guest-physical translation through the guest's own 4-level page
// tables, for hypercalls that pass virtual addresses and for reading the bytes of a
// faulting instruction. Every table entry read is bounds-checked against guest RAM.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>

#include "arch/x86_64/cpu_state.h"
#include "memory/guest_memory.h"

namespace vmrun::x86 {

/** The physical address for `vaddr`, or nullopt if it is not mapped (or tables lie outside RAM). */
std::optional<uint64_t> translate(const GuestMemory& memory, const PagingState& paging, uint64_t vaddr);

/** Copies up to `len` bytes from guest-virtual `vaddr`; returns how many were readable. */
size_t read_guest_virtual(const GuestMemory& memory, const PagingState& paging, uint64_t vaddr, uint8_t* out, size_t len);

}  // namespace vmrun::x86
