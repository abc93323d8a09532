/* Ending the VM: the workload's exit status goes to the VMM through I/O port 0xf4. */
#ifndef VMRUN_EXIT_REPORT_H
#define VMRUN_EXIT_REPORT_H

/** The I/O port the VMM (and QEMU's isa-debug-exit) watches for the exit status. */
#define EXIT_REPORT_PORT 0xf4

/** Syncs, drains the console, writes `status` (0-255) to the port, then reboots. */
__attribute__((noreturn)) void exit_report_and_power_off(int status);

#endif
