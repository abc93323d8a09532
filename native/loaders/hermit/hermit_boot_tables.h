// The GDT, identity page tables (with uhyve's recursive PML4 slot) and per-vCPU
// register state a Hermit kernel is entered with.
#pragma once
#include <cstdint>

#include "arch/x86_64/cpu_state.h"
#include "memory/guest_memory.h"

namespace vmrun::hermit {

/** Writes the 3-entry GDT at kGdtAddress and fills the segment/descriptor fields of `state`. */
void write_gdt(const GuestMemory& memory, x86::StartState& state);

/**
 * Writes PML4 (slot 511 pointing at itself) and identity-maps 2 MiB pages for every
 * page start in [0, last_address]; returns CR3. Throws if the table pool overflows.
 */
uint64_t write_page_tables(const GuestMemory& memory, uint64_t last_address);

/** The state every vCPU starts in; vCPUs differ only in RSI (their id). */
x86::StartState start_state(const x86::StartState& tables, uint64_t entry, uint64_t kernel_address, int cpu_id);

}  // namespace vmrun::hermit
