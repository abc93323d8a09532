/* /etc/passwd and /etc/group lookups without NSS (static binaries cannot use it). */
#include "exec_user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 0x7fffffffUL
#define LINE_MAX_BYTES 4096

/* Parses a whole-string decimal id in [0, ID_MAX]. */
static int parse_id(const char *s, unsigned long *out) {
  unsigned long v = 0;
  if (!s || *s == '\0') return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    v = v * 10 + (unsigned long)(*s - '0');
    if (v > ID_MAX) return -1;
  }
  *out = v;
  return 0;
}

/* Splits `line` at ':' into at most `max` fields in place; returns the field count. */
static size_t split_fields(char *line, char **fields, size_t max) {
  size_t n = 0;
  line[strcspn(line, "\n")] = '\0';
  while (n < max) {
    fields[n++] = line;
    char *colon = strchr(line, ':');
    if (!colon) break;
    *colon = '\0';
    line = colon + 1;
  }
  return n;
}

/* Opens <root>/etc/<name>; NULL if absent (a missing file is not an error). */
static FILE *open_etc(const char *root, const char *name) {
  char path[PATH_MAX];
  if ((size_t)snprintf(path, sizeof path, "%s/etc/%s", root, name) >= sizeof path) return NULL;
  return fopen(path, "re");
}

/*
 * Finds the first passwd entry whose name is `name` (or, when `name` is NULL, whose
 * uid is `uid`). Fills the matched name, uid, gid and home; returns 1 if found.
 */
static int passwd_find(FILE *f, const char *name, unsigned long uid, char *matched, size_t matchedlen,
                       unsigned long *out_uid, unsigned long *out_gid, char *home, size_t homelen) {
  char line[LINE_MAX_BYTES];
  while (fgets(line, sizeof line, f)) {
    char *fields[7];
    if (split_fields(line, fields, 7) < 7) continue;
    unsigned long eu, eg;
    if (parse_id(fields[2], &eu) || parse_id(fields[3], &eg)) continue;
    if (name ? strcmp(fields[0], name) != 0 : eu != uid) continue;
    snprintf(matched, matchedlen, "%s", fields[0]);
    *out_uid = eu;
    *out_gid = eg;
    snprintf(home, homelen, "%s", fields[5][0] ? fields[5] : "/");
    return 1;
  }
  return 0;
}

/* Finds the first group entry named `name` (or with gid `gid` when `name` is NULL). */
static int group_find(FILE *f, const char *name, unsigned long gid, unsigned long *out_gid) {
  char line[LINE_MAX_BYTES];
  rewind(f);
  while (fgets(line, sizeof line, f)) {
    char *fields[4];
    if (split_fields(line, fields, 4) < 3) continue;
    unsigned long eg;
    if (parse_id(fields[2], &eg)) continue;
    if (name ? strcmp(fields[0], name) != 0 : eg != gid) continue;
    *out_gid = eg;
    return 1;
  }
  return 0;
}

static int add_group(struct exec_user *out, unsigned long gid, char *err, size_t errlen) {
  for (size_t i = 0; i < out->ngroups; i++)
    if (out->groups[i] == (gid_t)gid) return 0;
  if (out->ngroups == EXEC_USER_MAX_GROUPS) {
    snprintf(err, errlen, "more than %d supplementary groups", EXEC_USER_MAX_GROUPS);
    return -1;
  }
  out->groups[out->ngroups++] = (gid_t)gid;
  return 0;
}

/* Adds the gid of every group listing `user` as a member. */
static int add_member_groups(FILE *f, const char *user, struct exec_user *out, char *err, size_t errlen) {
  char line[LINE_MAX_BYTES];
  rewind(f);
  while (fgets(line, sizeof line, f)) {
    char *fields[4];
    unsigned long eg;
    if (split_fields(line, fields, 4) < 4 || parse_id(fields[2], &eg)) continue;
    for (char *m = strtok(fields[3], ","); m; m = strtok(NULL, ","))
      if (strcmp(m, user) == 0 && add_group(out, eg, err, errlen)) return -1;
  }
  return 0;
}

/* A group given by name must exist; a numeric one need not (docker's rule). */
static int resolve_group(FILE *groupf, const char *spec, unsigned long *gid, char *err, size_t errlen) {
  unsigned long numeric;
  int is_numeric = parse_id(spec, &numeric) == 0;
  if (groupf && group_find(groupf, is_numeric ? NULL : spec, numeric, gid)) return 0;
  if (is_numeric) {
    *gid = numeric;
    return 0;
  }
  snprintf(err, errlen, "unable to find group %.64s: no matching entries in group file", spec);
  return -1;
}

int exec_user_resolve(const char *root, const char *spec, char *const *group_add,
                      struct exec_user *out, char *err, size_t errlen) {
  char user_part[256] = "0", matched[256] = "";
  const char *group_part = NULL;
  memset(out, 0, sizeof *out);
  snprintf(out->home, sizeof out->home, "/");

  if (spec && spec[0]) {
    const char *colon = strchr(spec, ':');
    size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
    if (ulen == 0 || ulen >= sizeof user_part) {
      snprintf(err, errlen, "invalid user spec '%.64s'", spec);
      return -1;
    }
    memcpy(user_part, spec, ulen);
    user_part[ulen] = '\0';
    if (colon) {
      group_part = colon + 1;
      if (*group_part == '\0') {
        snprintf(err, errlen, "invalid user spec '%.64s': empty group", spec);
        return -1;
      }
    }
  }

  unsigned long uid = 0, gid = 0, numeric_uid;
  int uid_is_numeric = parse_id(user_part, &numeric_uid) == 0;
  FILE *passwd = open_etc(root, "passwd");
  int found = passwd && passwd_find(passwd, uid_is_numeric ? NULL : user_part, numeric_uid, matched,
                                    sizeof matched, &uid, &gid, out->home, sizeof out->home);
  if (passwd) fclose(passwd);
  if (!found) {
    if (!uid_is_numeric) {
      snprintf(err, errlen, "unable to find user %.64s: no matching entries in passwd file", user_part);
      return -1;
    }
    uid = numeric_uid;
    gid = 0;
  }

  FILE *groupf = open_etc(root, "group");
  int rc = 0;
  if (group_part) {
    rc = resolve_group(groupf, group_part, &gid, err, errlen);
  } else if (found && groupf) {
    rc = add_member_groups(groupf, matched, out, err, errlen);
  }
  for (size_t i = 0; rc == 0 && group_add && group_add[i]; i++) {
    unsigned long extra;
    rc = resolve_group(groupf, group_add[i], &extra, err, errlen);
    if (rc == 0) rc = add_group(out, extra, err, errlen);
  }
  if (groupf) fclose(groupf);
  out->uid = (uid_t)uid;
  out->gid = (gid_t)gid;
  return rc;
}
