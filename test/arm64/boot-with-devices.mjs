// Boots an arm64 guest through the library with a vsock device and a virtio-blk disk
// (`vmrun boot` has no flags for devices): node boot-with-devices.mjs KERNEL INITRD
// DISK SOCKET CMDLINE. The console goes to stdout; the exit status is the guest's.
// Plain JavaScript on the built dist/, so that Node for arm64 runs it in the aarch64
// L1 (vmrun-boot.test.ts).
const { Machine } = await import(new URL('../../dist/index.js', import.meta.url).href);

const [kernel, initrd, disk, socketPath, cmdline] = process.argv.slice(2);
const machine = Machine.boot({ kernel, initrd, cmdline, memory: '256M', consoleFd: 1, vsock: { cid: 3, socketPath }, disks: [{ path: disk }] });
const exit = await machine.wait();
if (exit.message) console.error(`boot-with-devices: ${exit.message}`);
process.exit(exit.exitCode);
