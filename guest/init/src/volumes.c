#include "volumes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include "exit_report.h"
#include "guest_setup.h"
#include "workload.h"

static int mount_all(const struct run_config *cfg, char *err, size_t errlen) {
  for (size_t i = 0; i < cfg->volumec; i++) {
    const char *record = cfg->volumes[i];
    char tag[37];
    const char *colon = strchr(record, ':');
    size_t tag_len = colon ? (size_t)(colon - record) : 0;
    if (tag_len == 0 || tag_len >= sizeof tag || (strncmp(colon + 1, "ro:", 3) != 0 && strncmp(colon + 1, "rw:", 3) != 0) ||
        colon[4] != '/') {
      snprintf(err, errlen, "volume record '%.60s' is not TAG:ro|rw:/PATH", record);
      return -1;
    }
    memcpy(tag, record, tag_len);
    tag[tag_len] = '\0';
    const int read_only = colon[2] == 'o';
    const char *path = colon + 4;
    if (make_directories(path) != 0) {
      snprintf(err, errlen, "volume %s: cannot create %.60s: %s", tag, path, strerror(errno));
      return -1;
    }
    /* The host enforces read-only too; the flag makes the guest fail writes early with EROFS. */
    if (mount(tag, path, "virtiofs", read_only ? MS_RDONLY : 0, NULL) != 0) {
      snprintf(err, errlen, "volume %s: cannot mount it at %.60s: %s", tag, path, strerror(errno));
      return -1;
    }
  }
  return 0;
}

void volumes_mount(const struct run_config *cfg) {
  char err[200];
  if (mount_all(cfg, err, sizeof err) == 0) return;
  init_log("%s", err);
  exit_report_and_power_off(EXIT_SETUP_FAILED);
}
