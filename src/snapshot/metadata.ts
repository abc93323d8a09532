/** The JSON metadata section of a snapshot: what `vmrun snapshot inspect` prints. */
export interface SnapshotMetadata {
  format: 'vmrun-snapshot';
  formatVersion: string;
  vmrunVersion: string;
  created: string;
  /** The machine as it must be recreated. */
  machine: {
    memoryBytes: number;
    cpus: number;
    kernelFormat: string;
    kernel?: string;
    cmdline?: string;
    image?: string;
    /** Disks the machine had: recorded here, never copied; restore uses the files in place. */
    disks?: SnapshotDisk[];
    /** The machine's virtio-vsock device (restored in the same MMIO slot, with a new host socket). */
    vsock?: { cid: number };
  };
  host: { cpuModel: string; cpuVendor: string; virtualization: string };
  ram: { touchedBytes: number; savedBytes: number; compressedBytes: number; chunks: number };
  timings: { pausedMs: number; writeMs: number };
}

/** A disk of a saved machine, as restore must find it again. */
export interface SnapshotDisk {
  path: string;
  readOnly: boolean;
  serial: string;
  /** The file's size at the save; restore refuses another size. */
  bytes: number;
}
