/* Volumes: host directories shared over virtio-fs, mounted before the workload starts. */
#ifndef VMRUN_VOLUMES_H
#define VMRUN_VOLUMES_H

#include "run_config.h"

/**
 * Mounts every "volume=TAG:ro|rw:/PATH" record of `cfg` (virtiofs, by tag) at its
 * path, creating the path. A volume that cannot be mounted is a setup failure: the
 * init says which and powers off (the workload never runs without its volumes).
 */
void volumes_mount(const struct run_config *cfg);

#endif
