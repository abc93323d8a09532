/*
 * The run configuration vmrun's host writes to /.vmrun/run: what to run and how.
 *
 * Format, version 4: a sequence of records, each terminated by one NUL byte.
 *   record 0      "vmrun-run-config"           (magic)
 *   record 1      "version=4"
 *   then, in any order:
 *     "hostname=NAME"     at most once
 *     "workdir=/PATH"     at most once, absolute
 *     "user=SPEC"         at most once; docker's -u: name|uid[:group|gid]
 *     "group-add=G"       repeated; extra supplementary group (name or gid)
 *     "tty=0|1"           at most once
 *     "interactive=0|1"   at most once; 0: stdin is /dev/null unless tty (docker -i)
 *     "rows=N" "cols=N"   at most once each, 0..65535
 *     "arg=VALUE"         repeated, in argv order; at least one, unless:
 *     "workload=agent"    at most once, without arg records: the host sends the
 *                         workload over the agent (RUN, docs/agent-protocol.md)
 *     "env=KEY=VALUE"     repeated, in order
 *     "net-address=A.B.C.D/PREFIX"  at most once; eth0's IPv4 address (absent: only lo)
 *     "net-gateway=A.B.C.D"         at most once, with net-address; the default route,
 *                                   and host.vmrun.internal in /etc/hosts
 *     "net-dns=A.B.C.D"             at most once, with net-address; /etc/resolv.conf
 *     "volume=TAG:ro|rw:/PATH"      repeated; a virtio-fs volume mounted at /PATH
 *                                   before the workload starts (volumes.c)
 *   last record   "end"                        (proves the file is complete)
 * Unknown keys are an error: the init and the host encoder ship together, and a
 * new key means a new version. src/initramfs/run-config.ts is the encoder.
 */
#ifndef VMRUN_RUN_CONFIG_H
#define VMRUN_RUN_CONFIG_H

#include <stddef.h>

#define RUN_CONFIG_PATH "/.vmrun/run"
#define RUN_CONFIG_MAX_BYTES (1u << 20)
#define RUN_CONFIG_MAX_ITEMS 16384

/** The parsed run configuration; all strings point into `storage`. */
struct run_config {
  const char *hostname;
  const char *workdir;
  const char *user;
  const char *net_address;  /* "A.B.C.D/PREFIX", checked; NULL: no network but lo */
  const char *net_gateway;  /* checked IPv4 addresses, or NULL */
  const char *net_dns;
  int tty;
  int interactive;
  unsigned rows, cols;
  int workload_from_agent; /* "workload=agent": no argv here; the agent's RUN brings it */
  char **argv;        /* NULL-terminated; argc >= 1 unless workload_from_agent */
  size_t argc;
  char **envp;        /* NULL-terminated */
  size_t envc;
  char **group_add;   /* NULL-terminated */
  size_t group_addc;
  char **volumes;     /* NULL-terminated "TAG:ro|rw:/PATH" records, checked when mounted */
  size_t volumec;
  char *storage;
};

/**
 * Parses `len` bytes at `buf` (takes ownership of the malloc'd buffer). Returns 0,
 * or -1 with a one-line reason in `err`.
 */
int run_config_parse(char *buf, size_t len, struct run_config *out, char *err, size_t errlen);

/** Reads and parses the file at `path`. Returns 0, or -1 with a reason in `err`. */
int run_config_load(const char *path, struct run_config *out, char *err, size_t errlen);

#endif
