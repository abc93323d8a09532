#include "volumes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include "exit_report.h"
#include "guest_setup.h"
#include "workload.h"

/* One "TAG:ro|rw:/PATH" record, decoded. */
struct volume {
  char tag[37];
  int read_only;
  const char *path;
};

static int parse_record(const char *record, struct volume *v, char *err, size_t errlen) {
  const char *colon = strchr(record, ':');
  size_t tag_len = colon ? (size_t)(colon - record) : 0;
  if (tag_len == 0 || tag_len >= sizeof v->tag || (strncmp(colon + 1, "ro:", 3) != 0 && strncmp(colon + 1, "rw:", 3) != 0) ||
      colon[4] != '/') {
    snprintf(err, errlen, "volume record '%.60s' is not TAG:ro|rw:/PATH", record);
    return -1;
  }
  memcpy(v->tag, record, tag_len);
  v->tag[tag_len] = '\0';
  v->read_only = colon[2] == 'o';
  v->path = colon + 4;
  return 0;
}

static int mount_one(const char *record, char *err, size_t errlen) {
  struct volume v;
  if (parse_record(record, &v, err, errlen) != 0) return -1;
  if (make_directories(v.path) != 0) {
    snprintf(err, errlen, "volume %s: cannot create %.60s: %s", v.tag, v.path, strerror(errno));
    return -1;
  }
  /* The host enforces read-only too; the flag makes the guest fail writes early with EROFS. */
  if (mount(v.tag, v.path, "virtiofs", v.read_only ? MS_RDONLY : 0, NULL) != 0) {
    snprintf(err, errlen, "volume %s: cannot mount it at %.60s: %s", v.tag, v.path, strerror(errno));
    return -1;
  }
  return 0;
}

void volumes_mount(const struct run_config *cfg) {
  char err[200];
  for (size_t i = 0; i < cfg->volumec; i++) {
    if (mount_one(cfg->volumes[i], err, sizeof err) == 0) continue;
    init_log("%s", err);
    exit_report_and_power_off(EXIT_SETUP_FAILED);
  }
}

/* Whether volumes_detach unmounted the volumes (this process's view: the agent's). */
static int detached;

int volumes_detach(char *const *records, size_t count, char *err, size_t errlen) {
  if (detached) return 0;
  for (size_t n = count; n > 0; n--) {
    struct volume v;
    if (parse_record(records[n - 1], &v, err, errlen) != 0) return -1;
    if (umount2(v.path, 0) == 0) continue;
    int e = errno;
    if (e == EBUSY)
      snprintf(err, errlen, "the volume at %.100s is in use in the guest (a process has a file or its working directory in it)", v.path);
    else
      snprintf(err, errlen, "the volume at %.100s cannot be unmounted: %s", v.path, strerror(e));
    /* Leave the guest as it was: the volumes after this one are mounted again. */
    char again[200];
    for (size_t i = n; i < count; i++)
      if (mount_one(records[i], again, sizeof again) != 0) init_log("%s", again);
    return -1;
  }
  detached = 1;
  return 0;
}

int volumes_attach(char *const *records, size_t count, char *err, size_t errlen) {
  if (!detached) return 0;
  for (size_t i = 0; i < count; i++) {
    if (mount_one(records[i], err, errlen) == 0) continue;
    /* All or none: unmount those just mounted, so a second ATTACH does not stack mounts. */
    for (size_t j = i; j > 0; j--) {
      struct volume v;
      char ignored[200];
      if (parse_record(records[j - 1], &v, ignored, sizeof ignored) == 0) umount2(v.path, 0);
    }
    return -1;
  }
  detached = 0;
  return 0;
}
