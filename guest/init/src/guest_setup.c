/* Guest filesystem and identity setup; every step is best effort except what init needs. */
#include "guest_setup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void init_log(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
  line[n] = '\n';
  /* One write so the line is not interleaved with the workload's output. */
  dprintf(2, "vmrun-init: %.*s", n + 1, line);
}

static void mount_at(const char *source, const char *target, const char *fstype,
                     unsigned long flags, const char *data) {
  mkdir(target, 0755);
  if (mount(source, target, fstype, flags, data) != 0 && errno != EBUSY)
    init_log("mount %s on %s: %s", fstype, target, strerror(errno));
}

/* True when `path` is missing or an empty directory. */
static int is_absent_or_empty(const char *path) {
  DIR *d = opendir(path);
  if (!d) return errno == ENOENT;
  struct dirent *e;
  int empty = 1;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) { empty = 0; break; }
  closedir(d);
  return empty;
}

void guest_mount_filesystems(void) {
  const unsigned long nosuid_nodev_noexec = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  mount_at("proc", "/proc", "proc", nosuid_nodev_noexec, NULL);
  mount_at("sysfs", "/sys", "sysfs", nosuid_nodev_noexec, NULL);
  mount_at("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mount_at("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
           "newinstance,ptmxmode=0666,mode=0620,gid=5");
  mount_at("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  /* The image may ship content in /tmp or /run; a tmpfs over it would hide it. */
  if (is_absent_or_empty("/tmp")) mount_at("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  if (is_absent_or_empty("/run")) mount_at("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");

  /* devpts with newinstance needs /dev/ptmx to point into it. */
  unlink("/dev/ptmx");
  symlink("pts/ptmx", "/dev/ptmx");
  symlink("/proc/self/fd", "/dev/fd");
  symlink("/proc/self/fd/0", "/dev/stdin");
  symlink("/proc/self/fd/1", "/dev/stdout");
  symlink("/proc/self/fd/2", "/dev/stderr");
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t len = strlen(text);
  if (write(fd, text, len) != (ssize_t)len) init_log("write %s: %s", path, strerror(errno));
  close(fd);
}

void guest_set_hostname(const char *hostname) {
  if (!hostname || !*hostname) return;
  if (sethostname(hostname, strlen(hostname)) != 0) init_log("sethostname: %s", strerror(errno));
  struct stat st;
  if (stat("/etc", &st) != 0 || !S_ISDIR(st.st_mode)) return;
  char text[512];
  snprintf(text, sizeof text, "%s\n", hostname);
  write_file("/etc/hostname", text);
}

void guest_write_hosts(const char *hostname, const char *host_address) {
  if ((!hostname || !*hostname) && !host_address) return;
  struct stat st;
  if (stat("/etc", &st) != 0 || !S_ISDIR(st.st_mode)) return;
  char text[512];
  int n = snprintf(text, sizeof text, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  if (hostname && *hostname && n > 0 && (size_t)n < sizeof text)
    n += snprintf(text + n, sizeof text - (size_t)n, "127.0.1.1\t%s\n", hostname);
  if (host_address && n > 0 && (size_t)n < sizeof text)
    snprintf(text + n, sizeof text - (size_t)n, "%s\thost.vmrun.internal\n", host_address);
  write_file("/etc/hosts", text);
}

void guest_write_resolv_conf(const char *nameserver) {
  struct stat st;
  if (!nameserver || stat("/etc", &st) != 0 || !S_ISDIR(st.st_mode)) return;
  char text[128];
  snprintf(text, sizeof text, "nameserver %s\n", nameserver);
  /* The image's resolv.conf may be a symlink into a resolver's run directory: replace it. */
  unlink("/etc/resolv.conf");
  write_file("/etc/resolv.conf", text);
}

void guest_loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) init_log("bring up lo: %s", strerror(errno));
  }
  close(s);
}
