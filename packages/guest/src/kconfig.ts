/** Kernel .config parsing: which options are built in (y) or modules (m). */
export type Tristate = 'y' | 'm';

export function parseKconfig(text: string): Map<string, Tristate | string> {
  const out = new Map<string, Tristate | string>();
  for (const raw of text.split('\n')) {
    const m = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(raw.trim());
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** The drivers inspection reports, with their module names and config options. */
export const DRIVERS = {
  virtio_blk: { modules: ['virtio_blk'], configs: ['VIRTIO_BLK'] },
  virtio_net: { modules: ['virtio_net'], configs: ['VIRTIO_NET'] },
  virtio_pci: { modules: ['virtio_pci'], configs: ['VIRTIO_PCI'] },
  virtio_scsi: { modules: ['virtio_scsi'], configs: ['SCSI_VIRTIO'] },
  xen_blkfront: { modules: ['xen_blkfront', 'xenblk'], configs: ['XEN_BLKDEV_FRONTEND', 'XEN_BLKDEV_FRONTEND'] },
  xen_netfront: { modules: ['xen_netfront', 'xennet'], configs: ['XEN_NETDEV_FRONTEND'] },
  ata_piix: { modules: ['ata_piix'], configs: ['ATA_PIIX'] },
  ahci: { modules: ['ahci'], configs: ['SATA_AHCI'] },
  sd_mod: { modules: ['sd_mod'], configs: ['BLK_DEV_SD'] },
  e1000: { modules: ['e1000'], configs: ['E1000'] },
  // EC2 Nitro: EBS volumes are NVMe namespaces, the network is the Elastic Network Adapter.
  nvme: { modules: ['nvme'], configs: ['BLK_DEV_NVME'] },
  ena: { modules: ['ena'], configs: ['ENA_ETHERNET'] },
  ext2: { modules: ['ext2'], configs: ['EXT2_FS'] },
  ext3: { modules: ['ext3'], configs: ['EXT3_FS'] },
  ext4: { modules: ['ext4'], configs: ['EXT4_FS'] },
  jbd: { modules: ['jbd'], configs: ['JBD'] },
  jbd2: { modules: ['jbd2'], configs: ['JBD2'] },
} as const;

export type DriverName = keyof typeof DRIVERS;
export const DRIVER_NAMES = Object.keys(DRIVERS) as DriverName[];

/** Module file name (xen-blkfront.ko.xz) -> module name (xen_blkfront). */
export function moduleName(file: string): string | undefined {
  const m = /^(.+?)\.(?:ko(?:\.(?:xz|zst|gz))?|o)$/.exec(file.split('/').pop() ?? '');
  return m ? m[1]!.replace(/-/g, '_') : undefined;
}
