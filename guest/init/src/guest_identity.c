/* Refreshing a restored clone's entropy, clock, hostname and MAC (see guest_identity.h). */
#include "guest_identity.h"
#include "guest_setup.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* <linux/random.h> is not in musl's headers: its two ioctls and their argument. */
#define GUEST_RNDADDENTROPY _IOW('R', 0x03, int[2])
#define GUEST_RNDRESEEDCRNG _IO('R', 0x07)
#define GUEST_ARPHRD_ETHER 1

struct guest_rand_pool_info {
  int entropy_count; /* bits credited */
  int buf_size;      /* bytes */
  unsigned char buf[];
};

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int guest_parse_mac(const char *text, unsigned char out[6]) {
  if (strlen(text) != 17) return -1;
  for (int i = 0; i < 6; i++) {
    const char *p = text + 3 * i;
    int hi = hex_digit(p[0]), lo = hex_digit(p[1]);
    if (hi < 0 || lo < 0 || (i < 5 && p[2] != ':')) return -1;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  return (out[0] & 1) ? -1 : 0; /* a multicast address cannot be an interface's */
}

static int add_entropy(const unsigned char *bytes, size_t len, char *err, size_t errlen) {
  struct guest_rand_pool_info *info = malloc(sizeof *info + len);
  if (!info) return snprintf(err, errlen, "entropy: out of memory"), -1;
  info->entropy_count = (int)(len * 8);
  info->buf_size = (int)len;
  memcpy(info->buf, bytes, len);
  int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  int rc = fd < 0 || ioctl(fd, GUEST_RNDADDENTROPY, info) != 0 || ioctl(fd, GUEST_RNDRESEEDCRNG) != 0 ? -1 : 0;
  if (rc) snprintf(err, errlen, "entropy: %s", strerror(errno));
  if (fd >= 0) close(fd);
  memset(info->buf, 0, len);
  free(info);
  return rc;
}

static int set_mac(const char *text, char *err, size_t errlen) {
  unsigned char mac[6];
  if (guest_parse_mac(text, mac) != 0) return snprintf(err, errlen, "MAC \"%.32s\" is not a unicast aa:bb:cc:dd:ee:ff", text), -1;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "eth0");
  ifr.ifr_hwaddr.sa_family = GUEST_ARPHRD_ETHER;
  memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
  /* virtio-net allows a live change (IFF_LIVE_ADDR_CHANGE): the link stays up. */
  int rc = fd < 0 || ioctl(fd, SIOCSIFHWADDR, &ifr) != 0 ? -1 : 0;
  if (rc) snprintf(err, errlen, "eth0 MAC: %s", strerror(errno));
  if (fd >= 0) close(fd);
  return rc;
}

int guest_identity_apply(const struct guest_identity *id, char *err, size_t errlen) {
  if (id->entropy_len && add_entropy(id->entropy, id->entropy_len, err, errlen) != 0) return -1;
  if (id->realtime_ns) {
    struct timespec ts = {.tv_sec = (time_t)(id->realtime_ns / 1000000000u), .tv_nsec = (long)(id->realtime_ns % 1000000000u)};
    if (clock_settime(CLOCK_REALTIME, &ts) != 0) return snprintf(err, errlen, "clock: %s", strerror(errno)), -1;
  }
  if (id->hostname && id->hostname[0]) {
    if (sethostname(id->hostname, strlen(id->hostname)) != 0) return snprintf(err, errlen, "hostname: %s", strerror(errno)), -1;
    guest_set_hostname(id->hostname);
    guest_write_hosts(id->hostname, id->hosts_gateway);
  }
  if (id->mac && id->mac[0] && set_mac(id->mac, err, errlen) != 0) return -1;
  return 0;
}
