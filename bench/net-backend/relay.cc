// Back-end comparison for docs/networking.md: a TAP device (its far side in a network
// namespace, where the host kernel's TCP stack plays the guest) relayed to one of the
// two user-mode back ends vmrun considered: libslirp in-process (vmrun's UserNetwork,
// the very class the net device uses) or passt over a socketpair with QEMU's stream
// framing (4-byte big-endian length + frame). Run by compare.sh (root: it needs netns).
//   relay slirp|passt TAPNAME HOSTPORT GUESTPORT
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "devices/virtio/net/user_network.h"

using namespace vmrun;

static int open_tap(const char* name) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) { perror("/dev/net/tun"); exit(1); }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) { perror("TUNSETIFF"); exit(1); }
  return fd;
}

static bool write_all(int fd, const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  while (n) {
    ssize_t w = write(fd, b, n);
    if (w < 0) { if (errno == EINTR) continue; if (errno == EAGAIN) { pollfd q{fd, POLLOUT, 0}; poll(&q, 1, 100); continue; } return false; }
    b += w; n -= static_cast<size_t>(w);
  }
  return true;
}

int main(int argc, char** argv) {
  if (argc != 5) { fprintf(stderr, "usage: relay slirp|passt TAP HOSTPORT GUESTPORT\n"); return 2; }
  std::string kind = argv[1];
  int tap = open_tap(argv[2]);
  int host_port = atoi(argv[3]), guest_port = atoi(argv[4]);
  printf("ready\n");
  fflush(stdout);
  std::vector<uint8_t> buf(70000);

  if (kind == "slirp") {
    NetworkConfig c;
    c.forwards.push_back({false, inet_addr("127.0.0.1"), static_cast<uint16_t>(host_port), static_cast<uint16_t>(guest_port)});
    UserNetwork net(c, [&](const uint8_t* f, size_t n) { (void)!write(tap, f, n); });
    std::vector<pollfd> fds;
    for (;;) {
      fds.clear();
      fds.push_back({tap, POLLIN, 0});
      int timeout = -1;
      net.fill_poll(fds, &timeout);
      int n = poll(fds.data(), fds.size(), timeout);
      if (fds[0].revents & POLLIN) {
        for (int i = 0; i < 64; i++) {
          ssize_t r = read(tap, buf.data(), buf.size());
          if (r <= 0) break;
          net.from_guest(buf.data(), static_cast<size_t>(r));
          pollfd q{tap, POLLIN, 0};
          if (poll(&q, 1, 0) <= 0) break;
        }
      }
      net.dispatch(fds, 1, n < 0);
    }
  }

  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  std::string fdarg = std::to_string(sv[1]), tport = "127.0.0.1/" + std::to_string(host_port) + ":" + std::to_string(guest_port);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(sv[0]);
    execlp("passt", "passt", "-f", "-q", "-1", "-4", "-F", fdarg.c_str(), "-a", "10.0.2.15", "-n", "24", "-g", "10.0.2.2",
           "-m", getenv("PASST_MTU") ? getenv("PASST_MTU") : "1500", "-t", tport.c_str(), (char*)nullptr);
    _exit(127);
  }
  close(sv[1]);
  int s = sv[0];
  fcntl(tap, F_SETFL, O_NONBLOCK);
  std::vector<uint8_t> in;  // bytes from passt not yet framed
  for (;;) {
    pollfd fds[2] = {{tap, POLLIN, 0}, {s, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return 1;
    if (fds[0].revents & POLLIN) {
      for (;;) {
        ssize_t r = read(tap, buf.data() + 4, buf.size() - 4);
        if (r <= 0) break;
        uint32_t be = htonl(static_cast<uint32_t>(r));
        memcpy(buf.data(), &be, 4);
        if (!write_all(s, buf.data(), static_cast<size_t>(r) + 4)) return 0;
      }
    }
    if (fds[1].revents & (POLLIN | POLLHUP)) {
      uint8_t chunk[262144];
      ssize_t r = read(s, chunk, sizeof chunk);
      if (r <= 0) return 0;
      in.insert(in.end(), chunk, chunk + r);
      size_t at = 0;
      while (in.size() - at >= 4) {
        uint32_t len;
        memcpy(&len, in.data() + at, 4);
        len = ntohl(len);
        if (in.size() - at - 4 < len) break;
        (void)!write(tap, in.data() + at + 4, len);
        at += 4 + len;
      }
      in.erase(in.begin(), in.begin() + static_cast<long>(at));
    }
  }
}
