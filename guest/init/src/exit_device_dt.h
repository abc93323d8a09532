/*
 * Finding vmrun's arm64 exit device in the device tree the kernel exports under
 * /sys/firmware/devicetree/base (one directory per node, one file per property,
 * values as the raw big-endian bytes of the blob). Arch-neutral, so the host tests
 * run it (vmrun-init --find-exit-device DIR).
 */
#ifndef VMRUN_EXIT_DEVICE_DT_H
#define VMRUN_EXIT_DEVICE_DT_H

#include <stdint.h>

/**
 * Looks through the root node's children of the tree at `dt_base` for the one whose
 * "compatible" list holds EXIT_DEVICE_COMPATIBLE, and reads the address from its
 * "reg" (two address cells, two size cells, as vmrun's root node declares). Returns 0
 * and sets `*address`; -1 if there is none or its reg is not 16 bytes.
 */
int exit_device_find_in(const char *dt_base, uint64_t *address);

/** exit_device_find_in on the running kernel's tree, mounting sysfs first if need be. */
int exit_device_find(uint64_t *address);

#endif
