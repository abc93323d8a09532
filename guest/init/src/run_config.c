/* Parser of /.vmrun/run (format in run_config.h): bounds-checked, no allocation per record. */
#include "run_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char MAGIC[] = "vmrun-run-config";

/* Parses a decimal in [0, max]; the whole string must be digits. */
static int parse_uint(const char *s, unsigned max, unsigned *out) {
  unsigned long v = 0;
  if (*s == '\0') return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    v = v * 10 + (unsigned)(*s - '0');
    if (v > max) return -1;
  }
  *out = (unsigned)v;
  return 0;
}

static int is_ipv4(const char *s) {
  struct in_addr a;
  return inet_pton(AF_INET, s, &a) == 1;
}

/* net-address is A.B.C.D/0..32; the gateway and DNS need it and are plain addresses. */
static int check_network(const struct run_config *c, char *err, size_t errlen) {
  if (!c->net_address) {
    if (c->net_gateway || c->net_dns) {
      snprintf(err, errlen, "net-gateway or net-dns without net-address");
      return -1;
    }
    return 0;
  }
  char addr[20];
  const char *slash = strchr(c->net_address, '/');
  unsigned prefix;
  if (!slash || (size_t)(slash - c->net_address) >= sizeof addr || parse_uint(slash + 1, 32, &prefix) != 0) {
    snprintf(err, errlen, "net-address '%.40s' is not A.B.C.D/PREFIX", c->net_address);
    return -1;
  }
  memcpy(addr, c->net_address, (size_t)(slash - c->net_address));
  addr[slash - c->net_address] = '\0';
  if (!is_ipv4(addr)) {
    snprintf(err, errlen, "net-address '%.40s' is not A.B.C.D/PREFIX", c->net_address);
    return -1;
  }
  if (c->net_gateway && !is_ipv4(c->net_gateway)) {
    snprintf(err, errlen, "net-gateway '%.40s' is not an IPv4 address", c->net_gateway);
    return -1;
  }
  if (c->net_dns && !is_ipv4(c->net_dns)) {
    snprintf(err, errlen, "net-dns '%.40s' is not an IPv4 address", c->net_dns);
    return -1;
  }
  return 0;
}

static int set_once(const char **slot, const char *value, const char *key, char *err, size_t errlen) {
  if (*slot) {
    snprintf(err, errlen, "duplicate record '%s'", key);
    return -1;
  }
  *slot = value;
  return 0;
}

int run_config_parse(char *buf, size_t len, struct run_config *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->storage = buf;
  if (len == 0 || buf[len - 1] != '\0') {
    snprintf(err, errlen, "truncated (does not end with a NUL-terminated record)");
    return -1;
  }

  /* First pass: count repeated records so the arrays can be sized exactly. */
  size_t nrecords = 0, nargs = 0, nenv = 0, ngroups = 0, nvolumes = 0;
  for (size_t off = 0; off < len; off += strlen(buf + off) + 1) {
    const char *r = buf + off;
    nrecords++;
    if (strncmp(r, "arg=", 4) == 0) nargs++;
    else if (strncmp(r, "env=", 4) == 0) nenv++;
    else if (strncmp(r, "group-add=", 10) == 0) ngroups++;
    else if (strncmp(r, "volume=", 7) == 0) nvolumes++;
  }
  if (nrecords > RUN_CONFIG_MAX_ITEMS) {
    snprintf(err, errlen, "too many records (%zu, limit %u)", nrecords, RUN_CONFIG_MAX_ITEMS);
    return -1;
  }
  out->argv = calloc(nargs + 1, sizeof(char *));
  out->envp = calloc(nenv + 1, sizeof(char *));
  out->group_add = calloc(ngroups + 1, sizeof(char *));
  out->volumes = calloc(nvolumes + 1, sizeof(char *));
  if (!out->argv || !out->envp || !out->group_add || !out->volumes) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }

  const char *tty = NULL, *interactive = NULL, *rows = NULL, *cols = NULL, *workload = NULL;
  size_t index = 0;
  int saw_end = 0;
  for (size_t off = 0; off < len; index++) {
    char *r = buf + off;
    off += strlen(r) + 1;
    if (saw_end) {
      snprintf(err, errlen, "data after the 'end' record");
      return -1;
    }
    if (index == 0) {
      if (strcmp(r, MAGIC) != 0) {
        snprintf(err, errlen, "not a vmrun run configuration (bad magic)");
        return -1;
      }
      continue;
    }
    if (index == 1) {
      if (strcmp(r, "version=4") != 0) {
        snprintf(err, errlen, "unsupported version record '%.40s' (this init reads version=4)", r);
        return -1;
      }
      continue;
    }
    if (strcmp(r, "end") == 0) { saw_end = 1; continue; }

    char *eq = strchr(r, '=');
    if (!eq) {
      snprintf(err, errlen, "record %zu has no '=': '%.40s'", index, r);
      return -1;
    }
    *eq = '\0';
    const char *key = r, *value = eq + 1;
    int rc = 0;
    if (strcmp(key, "arg") == 0) out->argv[out->argc++] = (char *)value;
    else if (strcmp(key, "env") == 0) {
      if (value[0] == '\0' || value[0] == '=' || !strchr(value, '=')) {
        snprintf(err, errlen, "env record '%.40s' is not KEY=VALUE", value);
        return -1;
      }
      out->envp[out->envc++] = (char *)value;
    } else if (strcmp(key, "group-add") == 0) {
      if (value[0] == '\0') {
        snprintf(err, errlen, "empty group-add record");
        return -1;
      }
      out->group_add[out->group_addc++] = (char *)value;
    }
    else if (strcmp(key, "volume") == 0) out->volumes[out->volumec++] = (char *)value;  /* checked by volumes.c */
    else if (strcmp(key, "hostname") == 0) rc = set_once(&out->hostname, value, key, err, errlen);
    else if (strcmp(key, "workdir") == 0) rc = set_once(&out->workdir, value, key, err, errlen);
    else if (strcmp(key, "user") == 0) rc = set_once(&out->user, value, key, err, errlen);
    else if (strcmp(key, "tty") == 0) rc = set_once(&tty, value, key, err, errlen);
    else if (strcmp(key, "workload") == 0) rc = set_once(&workload, value, key, err, errlen);
    else if (strcmp(key, "interactive") == 0) rc = set_once(&interactive, value, key, err, errlen);
    else if (strcmp(key, "rows") == 0) rc = set_once(&rows, value, key, err, errlen);
    else if (strcmp(key, "cols") == 0) rc = set_once(&cols, value, key, err, errlen);
    else if (strcmp(key, "net-address") == 0) rc = set_once(&out->net_address, value, key, err, errlen);
    else if (strcmp(key, "net-gateway") == 0) rc = set_once(&out->net_gateway, value, key, err, errlen);
    else if (strcmp(key, "net-dns") == 0) rc = set_once(&out->net_dns, value, key, err, errlen);
    else {
      snprintf(err, errlen, "unknown record '%.40s'", key);
      return -1;
    }
    if (rc) return -1;
  }
  if (index < 2) {
    snprintf(err, errlen, "missing the magic and version records");
    return -1;
  }
  if (!saw_end) {
    snprintf(err, errlen, "truncated (no 'end' record)");
    return -1;
  }
  if (workload) {
    if (strcmp(workload, "agent") != 0) {
      snprintf(err, errlen, "workload must be 'agent', got '%.20s'", workload);
      return -1;
    }
    if (out->argc) {
      snprintf(err, errlen, "workload=agent comes without arg records");
      return -1;
    }
    out->workload_from_agent = 1;
  } else if (out->argc == 0) {
    snprintf(err, errlen, "no 'arg' record: nothing to run");
    return -1;
  }
  if (out->argc && out->argv[0][0] == '\0') {
    snprintf(err, errlen, "the program name (first arg) is empty");
    return -1;
  }
  if (out->workdir && out->workdir[0] != '/') {
    snprintf(err, errlen, "workdir '%.60s' is not an absolute path", out->workdir);
    return -1;
  }
  if (out->hostname && strlen(out->hostname) > 64) {
    snprintf(err, errlen, "hostname longer than 64 bytes");
    return -1;
  }
  if (check_network(out, err, errlen) != 0) return -1;
  unsigned v;
  if (tty) {
    if (parse_uint(tty, 1, &v)) { snprintf(err, errlen, "tty must be 0 or 1, got '%.20s'", tty); return -1; }
    out->tty = (int)v;
  }
  if (interactive) {
    if (parse_uint(interactive, 1, &v)) { snprintf(err, errlen, "interactive must be 0 or 1, got '%.20s'", interactive); return -1; }
    out->interactive = (int)v;
  }
  if (rows) {
    if (parse_uint(rows, 65535, &out->rows)) { snprintf(err, errlen, "bad rows '%.20s'", rows); return -1; }
  }
  if (cols) {
    if (parse_uint(cols, 65535, &out->cols)) { snprintf(err, errlen, "bad cols '%.20s'", cols); return -1; }
  }
  return 0;
}

int run_config_load(const char *path, struct run_config *out, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > RUN_CONFIG_MAX_BYTES) {
    snprintf(err, errlen, "%s: not a regular file of at most %u bytes", path, RUN_CONFIG_MAX_BYTES);
    close(fd);
    return -1;
  }
  size_t len = (size_t)st.st_size;
  char *buf = malloc(len + 1);
  if (!buf) {
    close(fd);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, buf + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (got != len) {
    free(buf);
    snprintf(err, errlen, "%s: short read", path);
    return -1;
  }
  char inner[200];
  if (run_config_parse(buf, len, out, inner, sizeof inner) != 0) {
    snprintf(err, errlen, "%s: %s", path, inner);
    return -1;
  }
  return 0;
}
