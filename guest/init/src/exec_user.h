/*
 * Resolves docker's `-u` spec (name|uid[:group|gid]) and --group-add against the
 * guest's own /etc/passwd and /etc/group, following runc's GetExecUser rules:
 * a numeric uid without a passwd entry is allowed (gid 0, HOME /), an unknown name
 * is an error, supplementary groups come from /etc/group memberships of the matched
 * user name only when no group is given explicitly.
 */
#ifndef VMRUN_EXEC_USER_H
#define VMRUN_EXEC_USER_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#define EXEC_USER_MAX_GROUPS 64

/** The credentials and home directory the workload runs with. */
struct exec_user {
  uid_t uid;
  gid_t gid;
  gid_t groups[EXEC_USER_MAX_GROUPS];
  size_t ngroups;
  char home[PATH_MAX];
};

/**
 * Resolves `spec` (NULL or "" means root) and `group_add` (NULL-terminated) using
 * `<root>/etc/passwd` and `<root>/etc/group` (`root` is "" in the guest). Returns 0,
 * or -1 with a one-line reason in `err`.
 */
int exec_user_resolve(const char *root, const char *spec, char *const *group_add,
                      struct exec_user *out, char *err, size_t errlen);

#endif
