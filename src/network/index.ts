/** Networking of VMs: options, -p parsing, and what the addon and the guest receive. */
export { DEFAULT_PUBLISH_HOST_IP, formatPortLine, formatPortMapping, parsePublish, parsePublishList, selectPorts, type PortMapping, type PortProtocol } from './publish.js';
export { NETWORK_MODES, parseDnsTarget, parseNetworkMode, randomMac, type DnsTarget, type NetworkMode, type NetworkOptions } from './options.js';
