// The host side of vsock is unix stream sockets (Firecracker's hybrid vsock): a
// listening socket per VM, and connections out to `<path>_<port>`. All non-blocking.
#pragma once
#include <string>

namespace vmrun::virtio::vsock {

/** Longest path a unix socket address holds (sun_path without its NUL). */
constexpr size_t kMaxUnixPath = 107;

/**
 * Listens on `path`. A stale socket left by a VM that is gone is replaced; a live
 * one, or any other file, is an error naming the path (VmrunError Usage).
 */
int listen_unix(const std::string& path);
/** Connects to `path` without blocking; -1 (errno set) if nobody listens or the backlog is full. */
int connect_unix(const std::string& path);

}  // namespace vmrun::virtio::vsock
