/* eth0 from the run configuration: static address, netmask and default route by ioctl. */
#ifndef VMRUN_GUEST_NETWORK_H
#define VMRUN_GUEST_NETWORK_H

/**
 * Brings `ifname` up with `address` ("A.B.C.D/PREFIX", already checked) and a default
 * route via `gateway` (may be NULL). Returns 0, or -1 with a reason in `err`.
 */
int guest_interface_up(const char *ifname, const char *address, const char *gateway, char *err, unsigned errlen);

#endif
