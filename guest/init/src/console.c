/* Console device handling: which tty backs /dev/console and its termios. */
#include "console.h"
#include "guest_setup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

void console_attach_init_stdio(void) {
  int fd = open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0) return;
  for (int i = 0; i < 3; i++)
    if (fd != i) dup2(fd, i);
  if (fd > 2) close(fd);
}

void console_configure(int tty, unsigned rows, unsigned cols) {
  struct termios t;
  if (tcgetattr(0, &t) != 0) return;
  if (tty) {
    t.c_iflag = ICRNL | IXON | IUTF8;
    t.c_oflag = OPOST | ONLCR;
    t.c_lflag = ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN;
  } else {
    cfmakeraw(&t);
  }
  t.c_cflag |= CLOCAL | CREAD;
  tcsetattr(0, TCSANOW, &t);
  if (tty && rows && cols) {
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    ioctl(0, TIOCSWINSZ, &ws);
  }
}

/* /dev/console itself cannot be a controlling tty: find the device behind it. */
static int open_console_tty(void) {
  char active[128] = "";
  int fd = open("/sys/class/tty/console/active", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, active, sizeof active - 1);
    close(fd);
    active[n > 0 ? n : 0] = '\0';
  }
  /* The last listed console is the one /dev/console writes to. */
  active[strcspn(active, "\n")] = '\0';
  char *name = strrchr(active, ' ');
  name = name ? name + 1 : active;
  if (*name) {
    char path[160];
    snprintf(path, sizeof path, "/dev/%s", name);
    fd = open(path, O_RDWR);
    if (fd >= 0) return fd;
  }
  return open("/dev/console", O_RDWR);
}

int console_make_controlling(void) {
  if (setsid() < 0) return -1;
  int fd = open_console_tty();
  if (fd < 0) return -1;
  if (ioctl(fd, TIOCSCTTY, 1) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  for (int i = 0; i < 3; i++)
    if (fd != i) dup2(fd, i);
  if (fd > 2) close(fd);
  return 0;
}

static void on_alarm(int sig) { (void)sig; }

void console_drain(void) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm; /* no SA_RESTART: tcdrain returns EINTR on timeout */
  sigaction(SIGALRM, &sa, &old);
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGALRM);
  sigprocmask(SIG_UNBLOCK, &unblock, NULL);
  alarm(2);
  tcdrain(1);
  alarm(0);
  sigaction(SIGALRM, &old, NULL);
}
