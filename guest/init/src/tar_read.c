/*
 * The tar reader: ustar, pax (x/g) and GNU long names (L/K). Every entry is created
 * relative to the destination's directory fd, one name component at a time with
 * O_NOFOLLOW, so no entry (and no symbolic link an earlier entry made) can place a
 * file outside the destination.
 */
#include "tar.h"

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

#define IN_BUFFER (64 * 1024)

struct tar_reader {
  int fd;
  unsigned char buf[IN_BUFFER];
  size_t start, len;
  int root; /* the destination directory */
  int as_root;
  char *err;
  size_t errlen;
};

/* What pax or GNU extension headers say about the next entry. */
struct pending_ext {
  char path[PATH_MAX];
  char linkpath[PATH_MAX];
  int has_path, has_linkpath, has_size, has_uid, has_gid, has_mtime;
  uint64_t size, uid, gid;
  int64_t mtime;
};

/* Reads exactly `n` bytes; 1 at a clean end of input before any byte, -1 on a short read. */
static int read_exact(struct tar_reader *r, void *out, size_t n) {
  unsigned char *p = out;
  size_t got = 0;
  while (got < n) {
    if (r->len == 0) {
      ssize_t k = read(r->fd, r->buf, IN_BUFFER);
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) {
        snprintf(r->err, r->errlen, "read archive: %s", strerror(errno));
        return -1;
      }
      if (k == 0) {
        if (got == 0) return 1;
        snprintf(r->err, r->errlen, "archive truncated");
        return -1;
      }
      r->start = 0;
      r->len = (size_t)k;
    }
    size_t take = n - got < r->len ? n - got : r->len;
    if (p) memcpy(p + got, r->buf + r->start, take);
    r->start += take;
    r->len -= take;
    got += take;
  }
  return 0;
}

/* Copies (to `fd`, or discards when fd < 0) `size` bytes of entry data plus its padding. */
static int copy_data(struct tar_reader *r, int fd, uint64_t size, const char *name) {
  uint64_t padded = size + (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
  while (padded) {
    if (r->len == 0) {
      ssize_t k = read(r->fd, r->buf, IN_BUFFER);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        snprintf(r->err, r->errlen, "archive truncated in \"%.200s\"", name);
        return -1;
      }
      r->start = 0;
      r->len = (size_t)k;
    }
    size_t take = padded < r->len ? (size_t)padded : r->len;
    size_t data = size < take ? (size_t)size : take;
    for (size_t off = 0; fd >= 0 && off < data;) {
      ssize_t n = write(fd, r->buf + r->start + off, data - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        snprintf(r->err, r->errlen, "write \"%.200s\": %s", name, strerror(errno));
        return -1;
      }
      off += (size_t)n;
    }
    size -= data;
    padded -= take;
    r->start += take;
    r->len -= take;
  }
  return 0;
}

/* A numeric header field: octal (space/NUL terminated) or GNU base-256. */
static int parse_number(const unsigned char *f, size_t width, uint64_t *out) {
  uint64_t v = 0;
  if (f[0] & 0x80) {
    if (f[0] != 0x80) return -1; /* negative */
    for (size_t i = 1; i < width; i++) {
      if (v >> 56) return -1;
      v = v << 8 | f[i];
    }
    *out = v;
    return 0;
  }
  size_t i = 0;
  while (i < width && f[i] == ' ') i++;
  for (; i < width && f[i] >= '0' && f[i] <= '7'; i++) {
    if (v >> 60) return -1;
    v = v * 8 + (uint64_t)(f[i] - '0');
  }
  for (; i < width; i++)
    if (f[i] != ' ' && f[i] != '\0') return -1;
  *out = v;
  return 0;
}

static int parse_decimal(const char *s, uint64_t *out) {
  uint64_t v = 0;
  if (!*s) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > UINT64_MAX / 10 - 9) return -1;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  *out = v;
  return 0;
}

/* Parses pax records ("LEN key=value\n") into `ext`; unknown keys are ignored. */
static int parse_pax(struct tar_reader *r, char *data, size_t len, struct pending_ext *ext) {
  size_t off = 0;
  while (off < len) {
    char *rec = data + off;
    size_t reclen = 0, i = 0;
    while (off + i < len && rec[i] >= '0' && rec[i] <= '9' && reclen < len) reclen = reclen * 10 + (size_t)(rec[i++] - '0');
    if (i == 0 || off + i >= len || rec[i] != ' ' || reclen <= i + 1 || reclen > len - off || rec[reclen - 1] != '\n') {
      snprintf(r->err, r->errlen, "malformed pax header");
      return -1;
    }
    rec[reclen - 1] = '\0';
    char *key = rec + i + 1, *eq = strchr(key, '=');
    if (!eq) {
      snprintf(r->err, r->errlen, "malformed pax record");
      return -1;
    }
    *eq = '\0';
    const char *value = eq + 1;
    uint64_t n;
    if (!strcmp(key, "path")) {
      if (strlen(value) >= sizeof ext->path) goto too_long;
      strcpy(ext->path, value);
      ext->has_path = 1;
    } else if (!strcmp(key, "linkpath")) {
      if (strlen(value) >= sizeof ext->linkpath) goto too_long;
      strcpy(ext->linkpath, value);
      ext->has_linkpath = 1;
    } else if (!strcmp(key, "size") && !parse_decimal(value, &n)) ext->size = n, ext->has_size = 1;
    else if (!strcmp(key, "uid") && !parse_decimal(value, &n)) ext->uid = n, ext->has_uid = 1;
    else if (!strcmp(key, "gid") && !parse_decimal(value, &n)) ext->gid = n, ext->has_gid = 1;
    else if (!strcmp(key, "mtime")) {
      char whole[32];
      snprintf(whole, sizeof whole, "%.*s", (int)strcspn(value, "."), value);
      if (!parse_decimal(whole, &n)) ext->mtime = (int64_t)n, ext->has_mtime = 1;
    }
    off += reclen;
  }
  return 0;
too_long:
  snprintf(r->err, r->errlen, "pax path longer than %d bytes", PATH_MAX - 1);
  return -1;
}

/*
 * Makes an archive name relative and safe: strips leading "./" and trailing "/",
 * refuses absolute names and ".." components, applies `rename_first`. Empty result
 * (the archive's "." itself): returns 1.
 */
static int clean_name(struct tar_reader *r, const char *name, const char *rename_first, char *out, size_t outlen) {
  if (name[0] == '/') {
    snprintf(r->err, r->errlen, "refusing absolute name \"%.200s\"", name);
    return -1;
  }
  char tmp[PATH_MAX];
  size_t n = 0;
  const char *p = name;
  while (*p) {
    const char *end = strchr(p, '/');
    size_t clen = end ? (size_t)(end - p) : strlen(p);
    if (clen == 2 && p[0] == '.' && p[1] == '.') {
      snprintf(r->err, r->errlen, "refusing name with \"..\": \"%.200s\"", name);
      return -1;
    }
    if (clen > 0 && !(clen == 1 && p[0] == '.')) {
      if (n + clen + 2 > sizeof tmp) {
        snprintf(r->err, r->errlen, "name too long: \"%.200s\"", name);
        return -1;
      }
      if (n) tmp[n++] = '/';
      memcpy(tmp + n, p, clen);
      n += clen;
    }
    p += clen;
    if (*p == '/') p++;
  }
  tmp[n] = '\0';
  if (n == 0) return 1;
  if (rename_first) {
    const char *rest = strchr(tmp, '/');
    if ((size_t)snprintf(out, outlen, "%s%s", rename_first, rest ? rest : "") >= outlen) {
      snprintf(r->err, r->errlen, "name too long: \"%.200s\"", name);
      return -1;
    }
  } else {
    snprintf(out, outlen, "%s", tmp);
  }
  return 0;
}

/*
 * Opens the directory that holds `rel` (creating missing directories, 0755) without
 * following any symbolic link; sets *leaf to the last component. Returns an fd or -1.
 */
static int open_parent(struct tar_reader *r, char *rel, char **leaf) {
  int dir = dup(r->root);
  char *p = rel;
  for (;;) {
    char *slash = strchr(p, '/');
    if (!slash) break;
    *slash = '\0';
    int next = openat(dir, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && mkdirat(dir, p, 0755) == 0)
      next = openat(dir, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int saved = errno;
    *slash = '/';
    close(dir);
    if (next < 0) {
      if (saved == ELOOP || saved == ENOTDIR)
        snprintf(r->err, r->errlen, "refusing to extract \"%.200s\" through a symbolic link or non-directory", rel);
      else snprintf(r->err, r->errlen, "\"%.200s\": %s", rel, strerror(saved));
      return -1;
    }
    dir = next;
    p = slash + 1;
  }
  *leaf = p;
  return dir;
}

/* Removes whatever non-directory is at dir/leaf so an entry can take its place. */
static void clear_leaf(int dir, const char *leaf) {
  struct stat st;
  if (fstatat(dir, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) unlinkat(dir, leaf, 0);
}

static void apply_metadata(struct tar_reader *r, int dir, const char *leaf, int fd, char type, uint64_t mode,
                           uint64_t uid, uint64_t gid, int64_t mtime) {
  struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = mtime}};
  /* Owner first: a chown clears setuid/setgid bits, so the mode comes after it. */
  if (r->as_root) {
    if (fd >= 0) fchown(fd, (uid_t)uid, (gid_t)gid);
    else fchownat(dir, leaf, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW);
  }
  if (type != '2') {
    if (fd >= 0) fchmod(fd, (mode_t)(mode & 07777));
    else fchmodat(dir, leaf, (mode_t)(mode & 07777), 0);
  }
  if (fd >= 0) futimens(fd, times);
  else utimensat(dir, leaf, times, AT_SYMLINK_NOFOLLOW);
}

static int extract_entry(struct tar_reader *r, const unsigned char *h, const char *name, const char *linkname,
                         const char *rename_first, uint64_t size, uint64_t mode, uint64_t uid, uint64_t gid,
                         int64_t mtime) {
  char type = (char)h[156];
  if (type == '\0' || type == '7') type = '0';
  char rel[PATH_MAX];
  int c = clean_name(r, name, rename_first, rel, sizeof rel);
  if (c < 0) return -1;
  if (c == 1) return copy_data(r, -1, type == '0' ? size : 0, name); /* "." itself: nothing to create */
  char *leaf;
  int dir = open_parent(r, rel, &leaf);
  if (dir < 0) return -1;
  int rc = 0, fd = -1;
  switch (type) {
    case '0':
      clear_leaf(dir, leaf);
      fd = openat(dir, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0) {
        snprintf(r->err, r->errlen, "create \"%.200s\": %s", rel, strerror(errno));
        rc = -1;
        break;
      }
      rc = copy_data(r, fd, size, rel);
      if (rc == 0) apply_metadata(r, dir, leaf, fd, type, mode, uid, gid, mtime);
      size = 0;
      close(fd);
      break;
    case '5': {
      struct stat st;
      if (fstatat(dir, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) unlinkat(dir, leaf, 0);
      if (mkdirat(dir, leaf, 0700) != 0 && errno != EEXIST) {
        snprintf(r->err, r->errlen, "mkdir \"%.200s\": %s", rel, strerror(errno));
        rc = -1;
        break;
      }
      apply_metadata(r, dir, leaf, -1, type, mode, uid, gid, mtime);
      break;
    }
    case '2':
      clear_leaf(dir, leaf);
      if (symlinkat(linkname, dir, leaf) != 0) {
        snprintf(r->err, r->errlen, "symlink \"%.200s\": %s", rel, strerror(errno));
        rc = -1;
        break;
      }
      apply_metadata(r, dir, leaf, -1, type, mode, uid, gid, mtime);
      break;
    case '1': {
      char target[PATH_MAX];
      int t = clean_name(r, linkname, rename_first, target, sizeof target);
      char *tleaf;
      int tdir = t == 0 ? open_parent(r, target, &tleaf) : -1;
      if (tdir < 0) {
        if (t == 1) snprintf(r->err, r->errlen, "hard link \"%.200s\" to the archive's root", rel);
        rc = -1;
        break;
      }
      clear_leaf(dir, leaf);
      if (linkat(tdir, tleaf, dir, leaf, 0) != 0) {
        snprintf(r->err, r->errlen, "link \"%.200s\" to \"%.200s\": %s", rel, target, strerror(errno));
        rc = -1;
      }
      close(tdir);
      break;
    }
    case '3':
    case '4':
    case '6': {
      uint64_t maj = 0, min = 0;
      parse_number(h + 329, 8, &maj);
      parse_number(h + 337, 8, &min);
      mode_t kind = type == '3' ? S_IFCHR : type == '4' ? S_IFBLK : S_IFIFO;
      clear_leaf(dir, leaf);
      if (mknodat(dir, leaf, kind | 0600, makedev((unsigned)maj, (unsigned)min)) != 0) {
        /* Devices need privileges the guest user may lack: skip them like tar does without root. */
        if (type == '6' || r->as_root) {
          snprintf(r->err, r->errlen, "mknod \"%.200s\": %s", rel, strerror(errno));
          rc = -1;
        }
        break;
      }
      apply_metadata(r, dir, leaf, -1, type, mode, uid, gid, mtime);
      break;
    }
    default:
      break; /* unknown kinds (sparse, volume labels): their data is skipped */
  }
  close(dir);
  if (rc == 0 && size && type != '0') rc = copy_data(r, -1, size, rel);
  return rc;
}

/* Reads an extension header's data (pax or GNU long name), bounded. */
static char *read_extension(struct tar_reader *r, uint64_t size) {
  if (size > TAR_MAX_PAX_BYTES) {
    snprintf(r->err, r->errlen, "extension header of %llu bytes (limit %u)", (unsigned long long)size, TAR_MAX_PAX_BYTES);
    return NULL;
  }
  uint64_t padded = size + (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
  char *data = malloc((size_t)padded + 1);
  if (!data) {
    snprintf(r->err, r->errlen, "out of memory");
    return NULL;
  }
  if (read_exact(r, data, (size_t)padded) != 0) {
    if (!r->err[0]) snprintf(r->err, r->errlen, "archive truncated");
    free(data);
    return NULL;
  }
  data[size] = '\0';
  return data;
}

int tar_extract(int in_fd, const char *dest_dir, const char *rename_first, char *err, size_t errlen) {
  struct tar_reader *r = calloc(1, sizeof *r);
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  err[0] = '\0';
  r->fd = in_fd;
  r->err = err;
  r->errlen = errlen;
  r->as_root = geteuid() == 0;
  r->root = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (r->root < 0) {
    snprintf(err, errlen, "\"%s\": %s", dest_dir, strerror(errno));
    free(r);
    return -1;
  }
  struct pending_ext ext;
  memset(&ext, 0, sizeof ext);
  int rc = 0;
  for (;;) {
    unsigned char h[TAR_BLOCK];
    int got = read_exact(r, h, sizeof h);
    if (got == 1) break; /* end of input without the zero blocks: accepted, like GNU tar */
    if (got < 0) {
      rc = -1;
      break;
    }
    int zero = 1;
    for (int i = 0; i < TAR_BLOCK && zero; i++) zero = h[i] == 0;
    if (zero) break;
    uint64_t sum, size, mode, uid, gid, mtime;
    unsigned computed = 0;
    for (int i = 0; i < TAR_BLOCK; i++) computed += (i >= 148 && i < 156) ? ' ' : h[i];
    if (parse_number(h + 148, 8, &sum) || sum != computed || parse_number(h + 124, 12, &size) ||
        parse_number(h + 100, 8, &mode) || parse_number(h + 108, 8, &uid) || parse_number(h + 116, 8, &gid) ||
        parse_number(h + 136, 12, &mtime)) {
      snprintf(err, errlen, "not a tar archive (bad header checksum or field)");
      rc = -1;
      break;
    }
    char type = (char)h[156];
    if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
      char *data = read_extension(r, size);
      if (!data) {
        rc = -1;
        break;
      }
      if (type == 'x') rc = parse_pax(r, data, (size_t)size, &ext);
      else if (type == 'L' || type == 'K') {
        char *dst = type == 'L' ? ext.path : ext.linkpath;
        if (strlen(data) >= PATH_MAX) {
          snprintf(err, errlen, "GNU long name longer than %d bytes", PATH_MAX - 1);
          rc = -1;
        } else {
          strcpy(dst, data);
          *(type == 'L' ? &ext.has_path : &ext.has_linkpath) = 1;
        }
      }
      free(data);
      if (rc) break;
      continue;
    }
    char name[PATH_MAX], linkname[PATH_MAX];
    if (ext.has_path) snprintf(name, sizeof name, "%s", ext.path);
    else if (h[345] && !memcmp(h + 257, "ustar", 5))
      snprintf(name, sizeof name, "%.155s/%.100s", (const char *)h + 345, (const char *)h);
    else snprintf(name, sizeof name, "%.100s", (const char *)h);
    if (ext.has_linkpath) snprintf(linkname, sizeof linkname, "%s", ext.linkpath);
    else snprintf(linkname, sizeof linkname, "%.100s", (const char *)h + 157);
    if (ext.has_size) size = ext.size;
    if (ext.has_uid) uid = ext.uid;
    if (ext.has_gid) gid = ext.gid;
    if (ext.has_mtime) mtime = (uint64_t)ext.mtime;
    memset(&ext, 0, sizeof ext);
    if (extract_entry(r, h, name, linkname, rename_first, size, mode, uid, gid, (int64_t)mtime)) {
      rc = -1;
      break;
    }
  }
  /* Read to the end so the sender is not cut off mid-stream (trailing zero blocks). */
  if (rc == 0) {
    unsigned char sink[TAR_BLOCK];
    while (read_exact(r, sink, 1) == 0) {}
  }
  close(r->root);
  free(r);
  return rc;
}
