/* The guest's environment before the workload starts: filesystems, names, loopback. */
#ifndef VMRUN_GUEST_SETUP_H
#define VMRUN_GUEST_SETUP_H

/** Mounts /proc, /sys, /dev, /dev/pts, /dev/shm, /tmp, /run and creates /dev links. */
void guest_mount_filesystems(void);

/** Sets the hostname and writes /etc/hostname (like docker). */
void guest_set_hostname(const char *hostname);

/** Writes /etc/hosts: localhost, the hostname, and host.vmrun.internal (the gateway) if given. */
void guest_write_hosts(const char *hostname, const char *host_address);

/** Writes /etc/resolv.conf naming `nameserver` (nothing if NULL). */
void guest_write_resolv_conf(const char *nameserver);

/** Brings the loopback interface up (containers expect 127.0.0.1 to work). */
void guest_loopback_up(void);

/** Prints `vmrun-init: <message>` as one line on stderr. */
void init_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
