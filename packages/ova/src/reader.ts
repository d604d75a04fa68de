import { createHash } from 'node:crypto';
import { ImageError, SliceDevice, readAt, type BlockDevice } from '@amitrans/block';
import { openVmdk } from '@amitrans/vmdk';
import { checkMemberName, normalName, readTarEntries, type TarEntry } from './archive.js';
import { OvaError } from './errors.js';
import { MANIFEST_ALGORITHMS, parseManifest, type ManifestLine } from './manifest.js';
import { MAX_OVF_BYTES, disksInOrder, parseOvf, type OvfDescriptor, type OvfDisk } from './ovf.js';

export interface OvaDisk {
  diskId: string;
  /** The member holding the disk image. */
  href: string;
  entry: TarEntry;
  /** Virtual size the OVF declares. */
  capacity: number;
  format?: string;
  /** The disk, read straight from its tar member (nothing is extracted). */
  device: BlockDevice;
}

export interface OvaArchive {
  entries: TarEntry[];
  ovfName: string;
  ovf: OvfDescriptor;
  /** The manifest, when the archive has one; every line was verified unless verification was turned off. */
  manifest?: { name: string; lines: ManifestLine[]; verified: boolean };
  /** Disks in the order the virtual system attaches them. */
  disks: OvaDisk[];
  /** Oddities that do not stop reading (a capacity that disagrees with the disk). */
  warnings: string[];
  /** Close the disk devices (the container stays open; it belongs to the caller). */
  close(): Promise<void>;
}

export interface OpenOvaOptions {
  /** Check the manifest digests (one sequential read of every listed member). Default true. */
  verifyManifest?: boolean;
  /** Turn a member into a disk; default: a VMDK reader. */
  openDisk?: (member: BlockDevice, disk: OvfDisk, name: string) => Promise<BlockDevice>;
  signal?: AbortSignal;
}

const CHUNK = 1024 * 1024;

/** Digest a member's bytes, reading it in 1 MiB chunks. */
export async function digestMember(container: BlockDevice, entry: TarEntry, algorithm: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash(algorithm);
  const buf = new Uint8Array(Math.min(CHUNK, Math.max(1, entry.size)));
  for (let done = 0; done < entry.size; done += buf.length) {
    signal?.throwIfAborted();
    const part = buf.subarray(0, Math.min(buf.length, entry.size - done));
    await container.read(part, entry.dataOffset + done);
    hash.update(part);
  }
  return hash.digest('hex');
}

/** A member reference from the OVF (ovf:href) must name a member of this archive, nothing else. */
function memberFor(entries: Map<string, TarEntry>, href: string, what: string, at: number): TarEntry {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(href) && !/^file:/i.test(href)) {
    if (/^[A-Za-z]:[\\/]/.test(href)) checkMemberName(href, { structure: 'OVF descriptor', offset: at });
    throw new OvaError('missing-file', 'E_UNSUPPORTED', `${what} is at ${JSON.stringify(href)}, outside the archive`, { structure: 'OVF descriptor', offset: at });
  }
  checkMemberName(href, { structure: 'OVF descriptor', offset: at });
  const entry = entries.get(normalName(href));
  if (!entry) throw new OvaError('missing-file', 'E_CORRUPT', `${what} names ${JSON.stringify(href)}, which is not in the archive`, { structure: 'OVF descriptor', offset: at });
  return entry;
}

/**
 * Read an OVA held in `container`: find and parse the OVF, verify the manifest when there
 * is one, and open each disk straight from its tar member. Nothing is extracted and the
 * container is never written.
 */
export async function openOva(container: BlockDevice, options: OpenOvaOptions = {}): Promise<OvaArchive> {
  const entries = await readTarEntries(container);
  const byName = new Map<string, TarEntry>();
  for (const e of entries) if (!byName.has(e.name)) byName.set(e.name, e);
  const ovfEntry = entries.find((e) => e.name.toLowerCase().endsWith('.ovf'));
  if (!ovfEntry) throw new OvaError('no-descriptor', 'E_CORRUPT', 'the archive holds no .ovf descriptor', { structure: 'OVA', offset: 0 });
  if (ovfEntry.size > MAX_OVF_BYTES) throw new ImageError('E_TOO_LARGE', `OVF descriptor of ${ovfEntry.size} bytes`, { structure: 'OVF descriptor', offset: ovfEntry.dataOffset });
  let ovf: OvfDescriptor;
  try {
    ovf = parseOvf(await readAt(container, ovfEntry.dataOffset, ovfEntry.size));
  } catch (err) {
    if (err instanceof ImageError) throw new OvaError('bad-descriptor', err.code, `${ovfEntry.name}: ${err.detail}`, { structure: err.structure ?? 'OVF descriptor', offset: ovfEntry.dataOffset + (err.offset ?? 0) });
    throw err;
  }
  const warnings: string[] = [];
  const base = ovfEntry.name.replace(/\.ovf$/i, '');
  const mfEntry = byName.get(`${base}.mf`) ?? entries.find((e) => e.name.toLowerCase().endsWith('.mf'));
  let manifest: OvaArchive['manifest'];
  if (mfEntry) {
    if (mfEntry.size > MAX_OVF_BYTES) throw new ImageError('E_TOO_LARGE', `manifest of ${mfEntry.size} bytes`, { structure: 'OVF manifest', offset: mfEntry.dataOffset });
    const lines = parseManifest(Buffer.from(await readAt(container, mfEntry.dataOffset, mfEntry.size)).toString('utf8'), mfEntry.dataOffset);
    const verify = options.verifyManifest ?? true;
    if (verify) {
      // Each member is hashed once per algorithm however often the manifest names it: a
      // manifest naming one 64 MiB member 2,000 times took 118 s.
      const digests = new Map<string, Promise<string>>();
      for (const line of lines) {
        const entry = memberFor(byName, line.file, `manifest line for ${line.file}`, mfEntry.dataOffset);
        const key = `${line.algorithm}\0${entry.dataOffset}`;
        let digest = digests.get(key);
        if (!digest) digests.set(key, (digest = digestMember(container, entry, MANIFEST_ALGORITHMS[line.algorithm], options.signal)));
        const actual = await digest;
        if (actual !== line.digest) {
          throw new OvaError('manifest-mismatch', 'E_BAD_CHECKSUM',
            `${line.algorithm} of ${line.file} is ${actual}, the manifest says ${line.digest}`, { structure: 'OVF manifest', offset: mfEntry.dataOffset });
        }
      }
    }
    const listed = new Set(lines.map((l) => normalName(l.file)));
    for (const f of [ovfEntry.name, ...ovf.files.map((f) => normalName(f.href))]) {
      if (!listed.has(f)) warnings.push(`the manifest has no digest for ${f}`);
    }
    manifest = { name: mfEntry.name, lines, verified: verify };
  }

  const filesById = new Map(ovf.files.map((f) => [f.id, f]));
  const opened: OvaDisk[] = [];
  const closeAll = async (): Promise<void> => {
    for (const d of opened.reverse()) await d.device.close().catch(() => undefined);
  };
  try {
    for (const d of disksInOrder(ovf)) {
      if (d.fileRef === undefined) continue; // a blank disk the importer creates: nothing to read
      const file = filesById.get(d.fileRef);
      if (!file) throw new OvaError('missing-file', 'E_CORRUPT', `disk ${d.diskId} refers to file id ${JSON.stringify(d.fileRef)}, which References does not list`, { structure: 'OVF descriptor', offset: ovfEntry.dataOffset });
      if (file.compression !== undefined) throw new ImageError('E_UNSUPPORTED', `${file.href} is ${file.compression}-compressed inside the OVA`, { structure: 'OVF descriptor', offset: ovfEntry.dataOffset });
      if (file.chunkSize !== undefined) throw new ImageError('E_UNSUPPORTED', `${file.href} is split into chunks`, { structure: 'OVF descriptor', offset: ovfEntry.dataOffset });
      const entry = memberFor(byName, file.href, `disk ${d.diskId}`, ovfEntry.dataOffset);
      if (file.size !== undefined && file.size !== entry.size) warnings.push(`${file.href}: the OVF says ${file.size} bytes, the archive member holds ${entry.size}`);
      const member = new SliceDevice(container, entry.dataOffset, entry.size, { name: `OVA member "${entry.name}"` });
      let device: BlockDevice;
      try {
        device = options.openDisk ? await options.openDisk(member, d, entry.name) : await openVmdk(member);
      } catch (err) {
        if (err instanceof ImageError && !(err instanceof OvaError)) {
          throw new ImageError(err.code, `member ${entry.name}: ${err.detail}`, { structure: err.structure ?? 'OVA member', offset: entry.dataOffset + (err.offset ?? 0), cause: err });
        }
        throw err;
      }
      const disk: OvaDisk = { diskId: d.diskId, href: entry.name, entry, capacity: d.capacity, device };
      if (d.format !== undefined) disk.format = d.format;
      opened.push(disk);
      if (d.capacity !== device.size) warnings.push(`disk ${d.diskId}: the OVF capacity is ${d.capacity} bytes, ${entry.name} holds ${device.size}`);
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  const archive: OvaArchive = { entries, ovfName: ovfEntry.name, ovf, disks: [...opened], warnings, close: closeAll };
  if (manifest) archive.manifest = manifest;
  return archive;
}
