/* The tar writer: ustar headers, with a pax header when a field does not fit. */
#include "tar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define OUT_BUFFER (64 * 1024)

struct link_seen {
  dev_t dev;
  ino_t ino;
  char *name;
};

struct tar_writer {
  int fd;
  unsigned char buf[OUT_BUFFER];
  size_t len;
  struct link_seen *links;
  size_t nlinks, cap_links;
  char *err;
  size_t errlen;
};

static int flush_out(struct tar_writer *w) {
  size_t off = 0;
  while (off < w->len) {
    ssize_t n = write(w->fd, w->buf + off, w->len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      snprintf(w->err, w->errlen, "write archive: %s", strerror(errno));
      return -1;
    }
    off += (size_t)n;
  }
  w->len = 0;
  return 0;
}

static int emit(struct tar_writer *w, const void *data, size_t len) {
  const unsigned char *p = data;
  while (len) {
    size_t room = OUT_BUFFER - w->len, n = len < room ? len : room;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    p += n;
    len -= n;
    if (w->len == OUT_BUFFER && flush_out(w)) return -1;
  }
  return 0;
}

static int emit_padding(struct tar_writer *w, uint64_t size) {
  static const unsigned char zeros[TAR_BLOCK];
  size_t pad = (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
  return pad ? emit(w, zeros, pad) : 0;
}

/* Writes `v` as an octal field of `width` bytes (width-1 digits and a NUL); 0 if it does not fit. */
static int put_octal(char *field, size_t width, uint64_t v) {
  if (width < 22 && v >> (3 * (width - 1))) return 0;
  snprintf(field, width, "%0*llo", (int)(width - 1), (unsigned long long)v);
  return 1;
}

/* Appends one "LEN key=value\n" pax record; LEN counts itself. */
static void pax_record(char *out, size_t *len, size_t cap, const char *key, const char *value) {
  size_t body = strlen(key) + strlen(value) + 3; /* ' ' '=' '\n' */
  size_t total = body + 1;
  while (total != body + (size_t)snprintf(NULL, 0, "%zu", total)) total = body + (size_t)snprintf(NULL, 0, "%zu", total);
  if (*len + total < cap) *len += (size_t)snprintf(out + *len, cap - *len, "%zu %s=%s\n", total, key, value);
}

static void header_checksum(unsigned char *h) {
  memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < TAR_BLOCK; i++) sum += h[i];
  snprintf((char *)h + 148, 8, "%06o", sum);
  h[155] = ' ';
}

static int emit_header(struct tar_writer *w, const char *name, const char *linkname, char type,
                       const struct stat *st, uint64_t size) {
  unsigned char h[TAR_BLOCK];
  memset(h, 0, sizeof h);
  char pax[3 * PATH_MAX + 256];
  size_t paxlen = 0;
  char num[32];

  if (strlen(name) < 100) memcpy(h, name, strlen(name));
  else {
    pax_record(pax, &paxlen, sizeof pax, "path", name);
    memcpy(h, name, 99);
  }
  if (linkname) {
    if (strlen(linkname) < 100) memcpy(h + 157, linkname, strlen(linkname));
    else pax_record(pax, &paxlen, sizeof pax, "linkpath", linkname);
  }
  put_octal((char *)h + 100, 8, st->st_mode & 07777);
  if (!put_octal((char *)h + 108, 8, st->st_uid)) {
    snprintf(num, sizeof num, "%u", (unsigned)st->st_uid);
    pax_record(pax, &paxlen, sizeof pax, "uid", num);
  }
  if (!put_octal((char *)h + 116, 8, st->st_gid)) {
    snprintf(num, sizeof num, "%u", (unsigned)st->st_gid);
    pax_record(pax, &paxlen, sizeof pax, "gid", num);
  }
  if (!put_octal((char *)h + 124, 12, size)) {
    snprintf(num, sizeof num, "%llu", (unsigned long long)size);
    pax_record(pax, &paxlen, sizeof pax, "size", num);
  }
  uint64_t mtime = st->st_mtime > 0 ? (uint64_t)st->st_mtime : 0;
  put_octal((char *)h + 136, 12, mtime);
  h[156] = (unsigned char)type;
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  if (type == '3' || type == '4') {
    put_octal((char *)h + 329, 8, major(st->st_rdev));
    put_octal((char *)h + 337, 8, minor(st->st_rdev));
  }
  header_checksum(h);

  if (paxlen) {
    unsigned char x[TAR_BLOCK];
    memset(x, 0, sizeof x);
    snprintf((char *)x, 100, "PaxHeaders/%.80s", strrchr(name, '/') ? strrchr(name, '/') + 1 : name);
    put_octal((char *)x + 100, 8, 0644);
    put_octal((char *)x + 108, 8, 0);
    put_octal((char *)x + 116, 8, 0);
    put_octal((char *)x + 124, 12, paxlen);
    put_octal((char *)x + 136, 12, mtime);
    x[156] = 'x';
    memcpy(x + 257, "ustar", 6);
    memcpy(x + 263, "00", 2);
    header_checksum(x);
    if (emit(w, x, sizeof x) || emit(w, pax, paxlen) || emit_padding(w, paxlen)) return -1;
  }
  return emit(w, h, sizeof h);
}

/* The archive name of an earlier hard link to the same inode, or NULL (and remembers this one). */
static const char *hard_link_target(struct tar_writer *w, const struct stat *st, const char *name) {
  for (size_t i = 0; i < w->nlinks; i++)
    if (w->links[i].dev == st->st_dev && w->links[i].ino == st->st_ino) return w->links[i].name;
  if (w->nlinks == TAR_MAX_LINK_TABLE) return NULL;
  if (w->nlinks == w->cap_links) {
    size_t cap = w->cap_links ? w->cap_links * 2 : 64;
    struct link_seen *grown = realloc(w->links, cap * sizeof *grown);
    if (!grown) return NULL;
    w->links = grown;
    w->cap_links = cap;
  }
  char *copy = strdup(name);
  if (!copy) return NULL;
  w->links[w->nlinks++] = (struct link_seen){st->st_dev, st->st_ino, copy};
  return NULL;
}

static int emit_file_data(struct tar_writer *w, const char *path, uint64_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    snprintf(w->err, w->errlen, "open \"%s\": %s", path, strerror(errno));
    return -1;
  }
  uint64_t left = size;
  while (left) {
    if (w->len == OUT_BUFFER && flush_out(w)) break;
    size_t room = OUT_BUFFER - w->len;
    ssize_t n = read(fd, w->buf + w->len, left < room ? (size_t)left : room);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      snprintf(w->err, w->errlen, "read \"%s\": %s", path, strerror(errno));
      break;
    }
    if (n == 0) {
      /* The file shrank while being archived: keep the archive well-formed. */
      static const unsigned char zeros[4096];
      while (left) {
        size_t z = left < sizeof zeros ? (size_t)left : sizeof zeros;
        if (emit(w, zeros, z)) break;
        left -= z;
      }
      break;
    }
    w->len += (size_t)n;
    left -= (uint64_t)n;
  }
  close(fd);
  if (left) return -1;
  return emit_padding(w, size);
}

/* Archives `path` (on disk) under the archive name `name`, recursing into directories. */
static int write_entry(struct tar_writer *w, const char *path, const char *name, int depth) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    snprintf(w->err, w->errlen, "\"%s\": %s", path, strerror(errno));
    return -1;
  }
  if (S_ISREG(st.st_mode)) {
    const char *target = st.st_nlink > 1 ? hard_link_target(w, &st, name) : NULL;
    if (target) return emit_header(w, name, target, '1', &st, 0);
    if (emit_header(w, name, NULL, '0', &st, (uint64_t)st.st_size)) return -1;
    return emit_file_data(w, path, (uint64_t)st.st_size);
  }
  if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) {
      snprintf(w->err, w->errlen, "readlink \"%s\": %s", path, strerror(errno));
      return -1;
    }
    target[n] = '\0';
    return emit_header(w, name, target, '2', &st, 0);
  }
  if (S_ISFIFO(st.st_mode)) return emit_header(w, name, NULL, '6', &st, 0);
  if (S_ISCHR(st.st_mode)) return emit_header(w, name, NULL, '3', &st, 0);
  if (S_ISBLK(st.st_mode)) return emit_header(w, name, NULL, '4', &st, 0);
  if (!S_ISDIR(st.st_mode)) return 0; /* sockets have no archive form */

  if (depth >= TAR_MAX_DEPTH) {
    snprintf(w->err, w->errlen, "\"%s\": deeper than %d directories", path, TAR_MAX_DEPTH);
    return -1;
  }
  char dirname[PATH_MAX];
  if ((size_t)snprintf(dirname, sizeof dirname, "%s/", name) >= sizeof dirname) {
    snprintf(w->err, w->errlen, "\"%s\": name too long", path);
    return -1;
  }
  if (emit_header(w, dirname, NULL, '5', &st, 0)) return -1;
  DIR *d = opendir(path);
  if (!d) {
    snprintf(w->err, w->errlen, "opendir \"%s\": %s", path, strerror(errno));
    return -1;
  }
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char child_path[PATH_MAX], child_name[PATH_MAX];
    if ((size_t)snprintf(child_path, sizeof child_path, "%s/%s", path, e->d_name) >= sizeof child_path ||
        (size_t)snprintf(child_name, sizeof child_name, "%s%s", dirname, e->d_name) >= sizeof child_name) {
      snprintf(w->err, w->errlen, "\"%s/%s\": name too long", path, e->d_name);
      rc = -1;
      break;
    }
    rc = write_entry(w, child_path, child_name, depth + 1);
  }
  closedir(d);
  return rc;
}

int tar_write_path(int out_fd, const char *path, char *err, size_t errlen) {
  struct tar_writer *w = calloc(1, sizeof *w);
  if (!w) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  w->fd = out_fd;
  w->err = err;
  w->errlen = errlen;
  /* The archive's top name: the last component of `path` ("/" archives as "."). */
  char trimmed[PATH_MAX];
  snprintf(trimmed, sizeof trimmed, "%s", path);
  size_t len = strlen(trimmed);
  while (len > 1 && trimmed[len - 1] == '/') trimmed[--len] = '\0';
  const char *slash = strrchr(trimmed, '/');
  const char *base = slash ? slash + 1 : trimmed;
  if (*base == '\0') base = ".";
  static const unsigned char end[2 * TAR_BLOCK];
  int rc = write_entry(w, trimmed, base, 0);
  if (rc == 0) rc = emit(w, end, sizeof end);
  if (rc == 0) rc = flush_out(w);
  for (size_t i = 0; i < w->nlinks; i++) free(w->links[i].name);
  free(w->links);
  free(w);
  return rc;
}
