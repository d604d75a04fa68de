import { createHash, randomUUID, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FileSink, ImageError, choiceOption, makeTempDir, onOffOption, optionError, readOptions, removeTempDir, textOption, wholeOption, type BlockDevice, type OptionTable, type Sink, type WriteOptions, type WriteResult } from '@amitrans/block';
import { VMDK_WRITE_OPTIONS, writeVmdk } from '@amitrans/vmdk';
import { MANIFEST_ALGORITHMS, serializeManifest, type ManifestAlgorithm, type ManifestLine } from './manifest.js';
import { ovfOsType } from './ostype.js';
import { NIC_SUBTYPE, VMDK_STREAM_OPTIMIZED, serializeOvf, type ControllerKind, type NicKind, type OvfVersion } from './ovf.js';
import { BLOCK, padding, serializeTarHeader } from './tar.js';

export interface OvaWriteSettings {
  name: string;
  /** Base of the member names: <base>.ovf, <base>-disk001.vmdk, <base>.mf. */
  fileBase: string;
  cpus: number;
  memoryMiB: number;
  nic: NicKind;
  controller: ControllerKind;
  version: OvfVersion;
  distro: string;
  arch: string;
  systemType: string;
  vboxMachine: boolean;
  uuid: string;
  /** Options for the streamOptimized VMDK inside. */
  vmdk: Record<string, string>;
  /** Modification time of the members, seconds since 1970. */
  mtime: number;
}

const NICS = Object.keys(NIC_SUBTYPE) as NicKind[];
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Member times: SOURCE_DATE_EPOCH when it is a number of seconds, else now. */
function defaultMtime(): number {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  return epoch && /^\d+$/.test(epoch) ? Number(epoch) : Math.floor(Date.now() / 1000);
}

/** The -o keys of an OVA output: the driver's table, read by the resolver and by ovaSettings. */
export const OVA_WRITE_OPTIONS = {
  name: textOption('virtual machine name (default: the output file name without .ova)', (t) => t.trim() !== '' && t.length <= 200, '1 to 200 characters'),
  cpus: wholeOption('number of virtual CPUs (default 1)', 1, 256, 1),
  memory: wholeOption('memory in MiB (default 1024)', 4, 16 * 1024 * 1024, 1024),
  nic: choiceOption('network adapter: e1000 (default), pcnet32, vmxnet3 or virtio', NICS, 'e1000'),
  controller: choiceOption('disk controller: ide (PIIX4, default) or sata (AHCI)', ['ide', 'sata'] satisfies ControllerKind[], 'ide'),
  ovf_version: choiceOption('OVF 1.0 (default; SHA-1 manifest) or 2.0 (SHA-256 manifest)', ['1.0', '2.0'] satisfies OvfVersion[], '1.0'),
  distro: textOption('os-release id of the guest for the OVF OS type (default: generic Linux)', /^/, 'any word', ''),
  arch: textOption('guest architecture for the OVF OS type: x86_64 (default), i386, aarch64', /^/, 'any word', 'x86_64'),
  system_type: textOption('vssd:VirtualSystemType (default vmx-10; VMware rejects virtualbox-2.2)', /^[A-Za-z0-9._-]+( [A-Za-z0-9._-]+)*$/, 'words of letters, digits, dots, dashes', 'vmx-10'),
  vbox_machine: onOffOption('on: add a vbox:Machine section (ovf:required="false") for VirtualBox', false),
  uuid: textOption('machine UUID for the vbox:Machine section (default random); fix it for reproducible output', UUID, '8-4-4-4-12 hex digits', () => randomUUID()),
  cid: textOption('VMDK content ID, 8 hex digits (default random); fix it for reproducible output', (t) => VMDK_WRITE_OPTIONS.cid.parse(t) !== undefined, VMDK_WRITE_OPTIONS.cid.expected),
  mtime: wholeOption('member modification time in seconds since 1970 (default: SOURCE_DATE_EPOCH, else now)', 0, 0o77777777777, defaultMtime),
} satisfies OptionTable;

/** Parse the -o options of an OVA output; `outputName` gives the default machine name. */
export function ovaSettings(options: Readonly<Record<string, string>> = {}, outputName?: string): OvaWriteSettings {
  const o = readOptions('ova', OVA_WRITE_OPTIONS, options);
  const fromFile = outputName ? basename(outputName).replace(/\.ova$/i, '') : '';
  const name = o.name ?? (fromFile || 'appliance');
  if (name.length > 200) throw optionError('ova', `ova name "${name}": expected ${OVA_WRITE_OPTIONS.name.expected}`);
  const fileBase = name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[.]+/, '').slice(0, 64) || 'appliance';
  const vmdk: Record<string, string> = { subformat: 'streamOptimized', adapter_type: 'ide' };
  if (o.cid !== undefined) vmdk.cid = o.cid;
  return {
    name,
    fileBase,
    cpus: o.cpus,
    memoryMiB: o.memory,
    nic: o.nic,
    controller: o.controller,
    version: o.ovf_version,
    distro: o.distro,
    arch: o.arch,
    systemType: o.system_type,
    vboxMachine: o.vbox_machine,
    uuid: o.uuid.toLowerCase(),
    vmdk,
    mtime: o.mtime,
  };
}

/** A name-based UUID (SHA-1, version 5 layout) so the disk's UUID follows the machine's. */
function derivedUuid(seed: string): string {
  const h = createHash('sha1').update(seed).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

const ZEROS = new Uint8Array(1024 * 1024);

/**
 * The VMDK writer's view of one tar member: positions count from the member's start, every
 * byte (holes included) goes into the digest, and nothing can be patched, which keeps the
 * writer on its one-pass streamOptimized path. `path` gives the VMDK descriptor its name.
 */
class MemberSink implements Sink {
  readonly seekable = false;
  readonly path: string;
  written = 0;

  constructor(
    private readonly inner: Sink,
    private readonly start: number,
    name: string,
    private readonly hash: Hash,
  ) {
    this.path = name;
  }

  get position(): number {
    return this.inner.position - this.start;
  }

  async write(data: Uint8Array): Promise<void> {
    this.hash.update(data);
    this.written += data.length;
    await this.inner.write(data);
  }

  async skip(length: number): Promise<void> {
    for (let left = length; left > 0; left -= ZEROS.length) this.hash.update(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
    await this.inner.skip(length);
  }

  pwrite(): Promise<void> {
    return Promise.reject(new ImageError('E_UNSUPPORTED', 'a disk inside an OVA is written in one pass'));
  }

  async commit(): Promise<void> {}
  async abort(): Promise<void> {}
}

async function writeMember(sink: Sink, name: string, data: Uint8Array, mtime: number): Promise<void> {
  await sink.write(serializeTarHeader({ name, size: data.length, mtime }));
  await sink.write(data);
  await sink.write(new Uint8Array(padding(data.length)));
}

interface DiskWritten {
  size: number;
  digest: string;
  result: WriteResult;
}

/** Seekable output: a placeholder header, the VMDK, then the header patched with the real size. */
async function diskInPlace(disk: BlockDevice, sink: Sink, name: string, s: OvaWriteSettings, algorithm: string, options: WriteOptions): Promise<DiskWritten> {
  const headerAt = sink.position;
  await sink.write(serializeTarHeader({ name, size: 0, mtime: s.mtime }));
  const hash = createHash(algorithm);
  const member = new MemberSink(sink, sink.position, name, hash);
  const result = await writeVmdk(disk, member, { ...options, options: s.vmdk });
  const size = member.position;
  await sink.write(new Uint8Array(padding(size)));
  await sink.pwrite(serializeTarHeader({ name, size, mtime: s.mtime }), headerAt);
  return { size, digest: hash.digest('hex'), result };
}

/**
 * Stream output (stdout): the tar header must carry the size before the data, so the VMDK
 * is spooled to a temporary file (sparse: holes cost nothing) and then copied out.
 */
async function diskSpooled(disk: BlockDevice, sink: Sink, name: string, s: OvaWriteSettings, algorithm: string, options: WriteOptions): Promise<DiskWritten> {
  const dir = await makeTempDir('ova-spool');
  try {
    const spoolPath = join(dir, 'disk.vmdk');
    const spool = await FileSink.create(spoolPath);
    const hash = createHash(algorithm);
    const member = new MemberSink(spool, 0, name, hash);
    let result: WriteResult;
    try {
      result = await writeVmdk(disk, member, { ...options, options: s.vmdk });
      await spool.commit();
    } catch (err) {
      await spool.abort();
      throw err;
    }
    const size = member.position;
    await sink.write(serializeTarHeader({ name, size, mtime: s.mtime }));
    const fh = await open(spoolPath, 'r');
    try {
      const buf = new Uint8Array(2 * 1024 * 1024);
      for (let done = 0; done < size;) {
        options.signal?.throwIfAborted();
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - done), done);
        if (bytesRead <= 0) throw new ImageError('E_IO', 'the spooled VMDK is shorter than written', { file: spoolPath });
        await sink.write(buf.slice(0, bytesRead));
        done += bytesRead;
      }
    } finally {
      await fh.close();
    }
    await sink.write(new Uint8Array(padding(size)));
    return { size, digest: hash.digest('hex'), result };
  } finally {
    await removeTempDir(dir);
  }
}

function sinkName(sink: Sink): string | undefined {
  const path = (sink as { path?: unknown }).path;
  return typeof path === 'string' ? path : undefined;
}

/**
 * Write `disk` as an OVA: the OVF descriptor first, then the disk as a streamOptimized
 * VMDK, then the manifest (SHA-1 for OVF 1.0, SHA-256 for 2.0), in a USTAR archive.
 */
export async function writeOva(disk: BlockDevice, sink: Sink, options: WriteOptions = {}): Promise<WriteResult> {
  const s = ovaSettings(options.options, sinkName(sink));
  if (sink.position !== 0) throw new ImageError('E_UNSUPPORTED', 'an OVA must start at the beginning of its output');
  const algorithm: ManifestAlgorithm = s.version === '2.0' ? 'SHA256' : 'SHA1';
  const ovfName = `${s.fileBase}.ovf`;
  const diskName = `${s.fileBase}-disk001.vmdk`;
  const mfName = `${s.fileBase}.mf`;
  // The VMDK holds whole sectors; the OVF capacity is what the VMDK will say.
  const capacity = Math.ceil(disk.size / 512) * 512;
  const ovf = Buffer.from(serializeOvf({
    version: s.version,
    name: s.name,
    os: ovfOsType(s.distro, s.arch),
    systemType: s.systemType,
    cpus: s.cpus,
    memoryMiB: s.memoryMiB,
    controller: s.controller,
    nic: s.nic,
    network: 'NAT',
    disks: [{ fileId: 'file1', href: diskName, diskId: 'vmdisk1', capacity, format: VMDK_STREAM_OPTIMIZED, vboxUuid: derivedUuid(`${s.uuid}/disk1`) }],
    ...(s.vboxMachine ? { vboxMachine: { uuid: s.uuid } } : {}),
  }), 'utf8');
  const nodeAlg = MANIFEST_ALGORITHMS[algorithm];
  const lines: ManifestLine[] = [{ algorithm, file: ovfName, digest: createHash(nodeAlg).update(ovf).digest('hex') }];
  await writeMember(sink, ovfName, ovf, s.mtime);
  const written = sink.seekable
    ? await diskInPlace(disk, sink, diskName, s, nodeAlg, options)
    : await diskSpooled(disk, sink, diskName, s, nodeAlg, options);
  lines.push({ algorithm, file: diskName, digest: written.digest });
  await writeMember(sink, mfName, Buffer.from(serializeManifest(lines), 'utf8'), s.mtime);
  // End of archive: two zero blocks.
  await sink.write(new Uint8Array(2 * BLOCK));
  const notes = capacity !== disk.size ? [`virtual size rounded up from ${disk.size} to ${capacity} bytes (whole sectors)`] : [];
  return {
    bytesRead: written.result.bytesRead,
    bytesWritten: written.result.bytesWritten + ovf.length + 5 * BLOCK,
    virtualSize: capacity,
    notes,
  };
}
