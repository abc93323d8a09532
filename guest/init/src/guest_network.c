/* Static IPv4 set-up with the classic ioctls: no netlink, no DHCP client, no tools in the image. */
#include "guest_network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void set_sockaddr(struct sockaddr *sa, in_addr_t addr) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = addr;
  memcpy(sa, &sin, sizeof sin);
}

static int fail(char *err, unsigned errlen, const char *what, const char *ifname) {
  snprintf(err, errlen, "%s %s: %s", what, ifname, strerror(errno));
  return -1;
}

int guest_interface_up(const char *ifname, const char *address, const char *gateway, char *err, unsigned errlen) {
  char addr[20];
  const char *slash = strchr(address, '/');
  size_t alen = slash ? (size_t)(slash - address) : 0;
  if (!slash || alen >= sizeof addr) {
    snprintf(err, errlen, "bad address '%s'", address);
    return -1;
  }
  memcpy(addr, address, alen);
  addr[alen] = '\0';
  unsigned prefix = (unsigned)strtoul(slash + 1, NULL, 10);
  struct in_addr ip;
  if (inet_pton(AF_INET, addr, &ip) != 1 || prefix > 32) {
    snprintf(err, errlen, "bad address '%s'", address);
    return -1;
  }
  in_addr_t mask = prefix == 0 ? 0 : htonl(0xffffffffu << (32 - prefix));

  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail(err, errlen, "socket for", ifname);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  set_sockaddr(&ifr.ifr_addr, ip.s_addr);
  if (ioctl(s, SIOCSIFADDR, &ifr) != 0) { fail(err, errlen, "set the address of", ifname); close(s); return -1; }
  set_sockaddr(&ifr.ifr_netmask, mask);
  if (ioctl(s, SIOCSIFNETMASK, &ifr) != 0) { fail(err, errlen, "set the netmask of", ifname); close(s); return -1; }
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) { fail(err, errlen, "read the flags of", ifname); close(s); return -1; }
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) { fail(err, errlen, "bring up", ifname); close(s); return -1; }

  if (gateway) {
    struct in_addr gw;
    if (inet_pton(AF_INET, gateway, &gw) != 1) {
      snprintf(err, errlen, "bad gateway '%s'", gateway);
      close(s);
      return -1;
    }
    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    set_sockaddr(&rt.rt_dst, INADDR_ANY);
    set_sockaddr(&rt.rt_genmask, INADDR_ANY);
    set_sockaddr(&rt.rt_gateway, gw.s_addr);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_dev = (char *)ifname;
    if (ioctl(s, SIOCADDRT, &rt) != 0 && errno != EEXIST) { fail(err, errlen, "add the default route via", ifname); close(s); return -1; }
  }
  close(s);
  return 0;
}
