/*
 * A small, bounded tar (POSIX ustar + pax) writer and reader, so the guest needs no
 * tar of its own. Kept: regular files, directories, symbolic and hard links, fifos,
 * modes, owners and modification times. The reader refuses absolute names, `..`
 * components and extraction through symbolic links.
 */
#ifndef VMRUN_TAR_H
#define VMRUN_TAR_H

#include <stddef.h>

#define TAR_BLOCK 512
/** Bounds on what a hostile archive can make the reader hold. */
#define TAR_MAX_PAX_BYTES (1u << 20)
#define TAR_MAX_DEPTH 256
/** Hard links the writer remembers (more are archived as separate files). */
#define TAR_MAX_LINK_TABLE 65536

/**
 * Writes a tar stream of `path` (a file, link or directory tree) to `out_fd`; the
 * entries are named basename(path) and below. Returns 0, or -1 with a reason in `err`.
 */
int tar_write_path(int out_fd, const char *path, char *err, size_t errlen);

/**
 * Extracts the tar stream read from `in_fd` under the directory `dest_dir`. With
 * `rename_first`, the first name component of every entry is replaced by it
 * (docker cp's copy to a new name). Returns 0, or -1 with a reason in `err`.
 */
int tar_extract(int in_fd, const char *dest_dir, const char *rename_first, char *err, size_t errlen);

#endif
