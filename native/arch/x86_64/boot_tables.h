// The tables a 64-bit x86 guest needs to start in long mode: identity page tables
// and a flat GDT, plus the register state that points at them.
#pragma once
#include "arch/x86_64/cpu_state.h"
#include "memory/guest_memory.h"

namespace vmrun::x86 {

/**
 * Writes identity-mapped page tables (2 MiB pages) for [0, 4 GiB) at kPml4Address and
 * returns the CR3 value. 4 GiB covers low RAM and the LAPIC/IOAPIC windows.
 */
uint64_t write_identity_page_tables(const GuestMemory& memory);

/**
 * Writes the Linux boot GDT (null, null, __BOOT_CS=0x10 64-bit code, __BOOT_DS=0x18
 * data) and IDT placeholder, and fills the segment and descriptor-table fields of `state`.
 */
void write_linux_boot_gdt(const GuestMemory& memory, StartState& state);

/** Sets CR0/CR4/EFER for long mode with paging at `cr3`. */
void set_long_mode(StartState& state, uint64_t cr3);

}  // namespace vmrun::x86
