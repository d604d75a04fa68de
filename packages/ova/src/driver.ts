import { acceptsOptions, ImageError, inContextFile, SliceDevice, type BlockDevice, type FormatDriver, type OpenContext, type ProbeInput, type ProbeResult } from '@amitrans/block';
import { openOva, type OpenOvaOptions, type OvaArchive } from './reader.js';
import { probeTar } from './tar.js';
import { OVA_WRITE_OPTIONS, ovaSettings, writeOva } from './writer.js';

const isOvf = (name: string): boolean => name.toLowerCase().endsWith('.ovf');

/** A tar whose first member is an .ovf descriptor (the OVF spec puts it first). */
function probe(input: ProbeInput): ProbeResult | undefined {
  const first = probeTar(input.head);
  return first !== undefined && isOvf(first) ? { format: 'ova', firstEntry: first } : undefined;
}

/**
 * Any other tar: named by detection (so `info` says what it is and open refuses it by name)
 * but not read: only an appliance's layout says which member is the disk.
 */
export const tarDriver: FormatDriver = {
  name: 'tar',
  description: 'tar archive that is not an appliance (its first member is not an .ovf)',
  probe(input: ProbeInput): ProbeResult | undefined {
    const first = probeTar(input.head);
    return first !== undefined && !isOvf(first) ? { format: 'tar', firstEntry: first } : undefined;
  },
};

/** The first disk of an appliance; closing it closes every disk the archive opened. */
class ApplianceDisk extends SliceDevice {
  readonly archive: OvaArchive;

  constructor(archive: OvaArchive, first: BlockDevice) {
    super(first, 0, first.size, { writable: false, name: `OVA disk ${archive.disks[0]!.href}` });
    this.archive = archive;
  }

  protected override async _close(): Promise<void> {
    await this.archive.close();
  }
}

/** Open the first disk of an OVA as a block device (what `convert` and `inspect` read). */
export async function openOvaDisk(container: BlockDevice, options: OpenOvaOptions = {}): Promise<ApplianceDisk> {
  const archive = await openOva(container, options);
  if (archive.disks.length === 0) {
    await archive.close();
    throw new ImageError('E_UNSUPPORTED', 'the appliance has no disk image', { structure: 'OVF descriptor' });
  }
  return new ApplianceDisk(archive, archive.disks[0]!.device);
}

/** OVA appliance: OVF descriptor, streamOptimized VMDK and manifest in a USTAR archive. */
export const ovaDriver: FormatDriver = {
  name: 'ova',
  extensions: ['ova'],
  platform: 'virtualbox',
  describesGuest: true,
  description: 'OVA appliance (OVF 1.0/2.0 in a tar, streamOptimized VMDK disks, manifest)',
  probe,
  open: (container: BlockDevice, context?: OpenContext): Promise<BlockDevice> => inContextFile(context, () => openOvaDisk(container)),
  write: writeOva,
  // Every valid option set streams.
  canStream: (options?: Readonly<Record<string, string>>): boolean => acceptsOptions(ovaSettings, options),
  writeOptions: OVA_WRITE_OPTIONS,
  checkOptions: (options) => void ovaSettings(options),
};
