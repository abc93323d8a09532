/*
 * Volumes: host directories shared over virtio-fs, mounted before the workload starts,
 * and unmounted and mounted again around a snapshot (the FUSE session lives in the
 * host's virtiofsd, which a snapshot cannot hold: docs/snapshots.md).
 */
#ifndef VMRUN_VOLUMES_H
#define VMRUN_VOLUMES_H

#include <stddef.h>

#include "run_config.h"

/**
 * Mounts every "volume=TAG:ro|rw:/PATH" record of `cfg` (virtiofs, by tag) at its
 * path, creating the path. A volume that cannot be mounted is a setup failure: the
 * init says which and powers off (the workload never runs without its volumes).
 */
void volumes_mount(const struct run_config *cfg);

/**
 * Before a save: unmounts every volume (last first), which completes the guest's
 * FUSE requests. A volume in use (a process holds a file or its working directory
 * in it) cannot be unmounted: those already unmounted are mounted again and -1 is
 * returned with the reason in `err`. A second call without volumes_attach is a no-op.
 */
int volumes_detach(char *const *records, size_t count, char *err, size_t errlen);

/** After a save or a restore: mounts the volumes volumes_detach unmounted (else a no-op). */
int volumes_attach(char *const *records, size_t count, char *err, size_t errlen);

#endif
