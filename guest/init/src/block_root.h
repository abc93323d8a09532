/* Switching the guest's root to a read-only image disk with a writable overlay. */
#ifndef VMRUN_BLOCK_ROOT_H
#define VMRUN_BLOCK_ROOT_H

/**
 * When the kernel command line has vmrun.root=SERIAL, mounts the virtio disk with
 * that serial (ext4, read-only) under an overlay with a tmpfs upper layer and makes
 * it the root, with the initramfs' /.vmrun bind-mounted into it. Returns 0 (also
 * when there is no vmrun.root=: the initramfs stays the root) or -1 after logging.
 */
int block_root_switch(void);

#endif
