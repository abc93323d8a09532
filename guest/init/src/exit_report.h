/*
 * Ending the VM: the workload's exit status goes to the VMM's exit device. x86_64: the
 * I/O port 0xf4 (QEMU's isa-debug-exit convention). arm64: an MMIO page the device
 * tree announces as compatible "vmrun,exit-device" (its address is the VMM's fact).
 */
#ifndef VMRUN_EXIT_REPORT_H
#define VMRUN_EXIT_REPORT_H

/** The I/O port the VMM (and QEMU's isa-debug-exit) watches for the exit status. */
#define EXIT_REPORT_PORT 0xf4

/** The device-tree compatible string of the arm64 exit device. */
#define EXIT_DEVICE_COMPATIBLE "vmrun,exit-device"

/** Syncs, drains the console, writes `status` (0-255) to the exit device, then reboots. */
__attribute__((noreturn)) void exit_report_and_power_off(int status);

#endif
