#include "exit_device_dt.h"
#include "exit_report.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYSFS_DEVICE_TREE "/sys/firmware/devicetree/base"

/* Reads at most `cap` bytes of `dir/node/property`; returns the length, -1 if absent or larger. */
static ssize_t read_property(const char *dir, const char *node, const char *property, unsigned char *buf, size_t cap) {
  char path[512];
  if (snprintf(path, sizeof path, "%s/%s/%s", dir, node, property) >= (int)sizeof path) return -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, cap);
  unsigned char extra;
  if (n >= 0 && (size_t)n == cap && read(fd, &extra, 1) != 0) n = -1; /* longer than any value we accept */
  close(fd);
  return n;
}

/* A "compatible" value is a list of NUL-terminated strings. */
static int compatible_lists(const unsigned char *list, size_t len, const char *wanted) {
  size_t i = 0;
  while (i < len) {
    const char *s = (const char *)list + i;
    size_t n = strnlen(s, len - i);
    if (n == len - i) return 0; /* not NUL-terminated: malformed */
    if (strcmp(s, wanted) == 0) return 1;
    i += n + 1;
  }
  return 0;
}

int exit_device_find_in(const char *dt_base, uint64_t *address) {
  DIR *d = opendir(dt_base);
  if (!d) return -1;
  int found = -1;
  struct dirent *e;
  while (found != 0 && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    unsigned char compatible[256];
    ssize_t n = read_property(dt_base, e->d_name, "compatible", compatible, sizeof compatible);
    if (n <= 0 || !compatible_lists(compatible, (size_t)n, EXIT_DEVICE_COMPATIBLE)) continue;
    unsigned char reg[16];
    if (read_property(dt_base, e->d_name, "reg", reg, sizeof reg) != (ssize_t)sizeof reg) break;
    uint64_t a = 0;
    for (int i = 0; i < 8; i++) a = (a << 8) | reg[i];
    *address = a;
    found = 0;
  }
  closedir(d);
  return found;
}

int exit_device_find(uint64_t *address) {
  struct stat st;
  if (stat(SYSFS_DEVICE_TREE, &st) != 0) {
    /* An early failure, before init mounted /sys: mount it now (we are about to power off). */
    mkdir("/sys", 0555);
    mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  }
  return exit_device_find_in(SYSFS_DEVICE_TREE, address);
}
