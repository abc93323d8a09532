/*
 * A block root filesystem: the image is a read-only ext4 on a virtio-blk disk whose
 * serial the kernel command line names (vmrun.root=SERIAL); the guest's root becomes
 * an overlay of it under a tmpfs, so the workload can write anywhere and the image
 * file on the host is never changed. Init itself and its run configuration stay in
 * the initramfs and are bind-mounted at /.vmrun in the new root.
 */
#include "block_root.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guest_setup.h"

#define CMDLINE_KEY "vmrun.root="
#define SERIAL_MAX 20 /* virtio-blk GET_ID: 20 bytes */
#define LOWER "/.vmrun-lower"
#define RW "/.vmrun-rw"
#define NEWROOT "/.vmrun-root"
#define DISK_WAIT_MS 5000

/* The value of vmrun.root= on the kernel command line, or "" if absent. */
static int root_serial(char *serial, size_t size) {
  char cmdline[4096];
  int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
  close(fd);
  if (n < 0) return -1;
  cmdline[n] = '\0';
  serial[0] = '\0';
  for (char *tok = strtok(cmdline, " \n"); tok; tok = strtok(NULL, " \n")) {
    if (strncmp(tok, CMDLINE_KEY, strlen(CMDLINE_KEY)) != 0) continue;
    snprintf(serial, size, "%s", tok + strlen(CMDLINE_KEY));
  }
  return 0;
}

/* Finds the virtio disk whose serial is `serial` (/sys/block/vdX/serial); writes /dev/vdX. */
static int find_disk(const char *serial, char *dev, size_t size) {
  DIR *d = opendir("/sys/block");
  if (!d) return -1;
  struct dirent *e;
  int found = -1;
  while (found != 0 && (e = readdir(d))) {
    if (strncmp(e->d_name, "vd", 2) != 0) continue;
    char path[300], got[SERIAL_MAX + 2];
    snprintf(path, sizeof path, "/sys/block/%s/serial", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, got, sizeof got - 1);
    close(fd);
    if (n < 0) continue;
    got[n] = '\0';
    got[strcspn(got, "\n")] = '\0';
    if (strcmp(got, serial) == 0) {
      snprintf(dev, size, "/dev/%s", e->d_name);
      found = 0;
    }
  }
  closedir(d);
  return found;
}

static int must_mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data) {
  mkdir(target, 0755);
  if (mount(source, target, fstype, flags, data) == 0) return 0;
  init_log("block root: mount %s (%s) on %s: %s", source, fstype, target, strerror(errno));
  return -1;
}

int block_root_switch(void) {
  mkdir("/proc", 0555);
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
    init_log("block root: mount proc: %s", strerror(errno));
    return -1;
  }
  char serial[64];
  int r = root_serial(serial, sizeof serial);
  if (r != 0 || serial[0] == '\0') {
    umount("/proc");
    return r;
  }
  if (must_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) ||
      must_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"))
    return -1;

  /* The disk is probed before init runs; wait briefly in case its node is late. */
  char dev[300];
  struct timespec pause = {0, 10 * 1000 * 1000};
  int waited = 0;
  while (find_disk(serial, dev, sizeof dev) != 0) {
    if (waited >= DISK_WAIT_MS) {
      init_log("block root: no virtio disk with serial \"%s\" (kernel without VIRTIO_BLK?)", serial);
      return -1;
    }
    nanosleep(&pause, NULL);
    waited += 10;
  }

  if (must_mount(dev, LOWER, "ext4", MS_RDONLY, NULL) ||
      must_mount("tmpfs", RW, "tmpfs", 0, "mode=0755"))
    return -1;
  mkdir(RW "/upper", 0755);
  mkdir(RW "/work", 0755);
  if (must_mount("overlay", NEWROOT, "overlay", 0,
                 "lowerdir=" LOWER ",upperdir=" RW "/upper,workdir=" RW "/work"))
    return -1;
  /* The upper layer's root takes the image root's owner and mode from the overlay. */
  mkdir(NEWROOT "/.vmrun", 0755);
  if (must_mount("/.vmrun", NEWROOT "/.vmrun", NULL, MS_BIND, NULL)) return -1;

  /* The new root's /proc, /sys and /dev are mounted afresh by guest_mount_filesystems. */
  umount2("/dev", MNT_DETACH);
  umount2("/sys", MNT_DETACH);
  umount2("/proc", MNT_DETACH);
  if (chdir(NEWROOT) != 0 || mount(NEWROOT, "/", NULL, MS_MOVE, NULL) != 0 || chroot(".") != 0 || chdir("/") != 0) {
    init_log("block root: switching to the overlay root: %s", strerror(errno));
    return -1;
  }
  return 0;
}
