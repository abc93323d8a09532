/* Exit device write first (the VMM ends the VM with the status); a reboot if nobody listens. */
#include "exit_report.h"
#include "console.h"

#include <sys/reboot.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <sys/io.h>

static void write_exit_device(unsigned status) {
  if (ioperm(EXIT_REPORT_PORT, 4, 1) == 0) outl(status, EXIT_REPORT_PORT);
}

#elif defined(__aarch64__)
#include "exit_device_dt.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* /dev/mem, made here if /dev is not populated yet (an early failure in an initramfs). */
static int open_dev_mem(void) {
  int fd = open("/dev/mem", O_RDWR | O_SYNC | O_CLOEXEC);
  if (fd >= 0) return fd;
  static const char node[] = "/.vmrun-exit-mem";
  if (mknod(node, S_IFCHR | 0600, makedev(1, 1)) != 0) return -1;
  fd = open(node, O_RDWR | O_SYNC | O_CLOEXEC);
  unlink(node);
  return fd;
}

static void write_exit_device(unsigned status) {
  uint64_t address;
  if (exit_device_find(&address) != 0) return;
  const long page = sysconf(_SC_PAGESIZE);
  if (page <= 0 || address % (uint64_t)page != 0) return;
  int fd = open_dev_mem();
  if (fd < 0) return;
  volatile uint32_t *reg = mmap(NULL, (size_t)page, PROT_WRITE, MAP_SHARED, fd, (off_t)address);
  close(fd);
  if (reg == MAP_FAILED) return;
  *reg = status; /* the VMM ends the VM on this store; nothing after it runs */
}

#else
#error "vmrun-init: no exit device for this architecture"
#endif

void exit_report_and_power_off(int status) {
  sync();
  console_drain();
  write_exit_device((unsigned)(status & 0xff));
  /* Still running: no exit device. reboot=k on the cmdline resets through the i8042. */
  reboot(RB_AUTOBOOT);
  for (;;) pause();
}
