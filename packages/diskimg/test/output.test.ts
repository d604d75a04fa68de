import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice, MemoryDevice, MemorySink } from '@amitrans/block';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { prng, qemuImgCheck, qemuImgCompare, requireTools, sha256File, tmpDir, UserFileSink, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { convert, outputKinds, resolveOutput, writeDisk, type OutputKind } from '../src/index.js';

// A destination kind added from outside, as an object store's URL will be: claimed by its
// prefix, written through its own sink, named by its key for the format and compression.
const written = new Map<string, MemorySink>();
const memKind: OutputKind = {
  claim: (output) => {
    if (!output.startsWith('mem://')) return undefined;
    const sink = new MemorySink();
    return {
      name: output,
      fileName: output.slice('mem://'.length),
      seekable: true,
      guard: async () => undefined,
      open: async () => (written.set(output, sink), sink),
    };
  },
};

describe('resolveOutput', () => {
  afterEach(() => {
    outputKinds.splice(outputKinds.indexOf(memKind), 1);
  });

  it('takes a new kind of destination, its format from the name, and writeDisk writes through it', async () => {
    outputKinds.unshift(memKind);
    const out = resolveOutput('mem://bucket/disk.vhd', undefined, { subformat: 'fixed', force_size: 'on' });
    expect(out.driver.name).toBe('vhd');
    expect(out.options).toEqual({ subformat: 'fixed', force_size: 'on' });
    const bytes = prng(3).bytes(3 * 1024 * 1024);
    const r = await writeDisk(new MemoryDevice(bytes), out, { sha256: true });
    const sink = written.get('mem://bucket/disk.vhd')!;
    expect(sink.committed).toBe(true);
    // A fixed VHD is the data then a 512-byte footer; a destination that cannot be read back is hashed as it is written.
    expect(Buffer.compare(sink.bytes.subarray(0, bytes.length), bytes)).toBe(0);
    expect(sink.bytes.length).toBe(bytes.length + 512);
    expect(r.sha256).toBe(createHash('sha256').update(sink.bytes).digest('hex'));
  });

  it('takes compression from the name and refuses a format that cannot stream into it', () => {
    outputKinds.unshift(memKind);
    const out = resolveOutput('mem://b/disk.vhd.bz2', undefined, {});
    expect([out.driver.name, out.compression]).toEqual(['vhd', 'bzip2']);
    expect(() => resolveOutput('mem://b/disk.qcow2.gz', undefined, {})).toThrow(/gzip compression applies to raw and vhd/);
    expect(resolveOutput('-', undefined, {}).driver.name).toBe('raw');
    expect(() => resolveOutput('-', 'qcow2', { compress: 'on' })).toThrow(/cannot be written to a stream/);
  });
});

describe('resolveOutput: bundles', () => {
  it('-O bundle or a .manifest.xml name is a bundle: its directory or s3:// prefix, and its name', async () => {
    expect(resolveOutput('out/emi.manifest.xml', undefined).bundle).toEqual({ location: 'out', prefix: 'emi' });
    expect(resolveOutput('s3://bkt/images/emi.manifest.xml', 'bundle').bundle).toEqual({ location: 's3://bkt/images/', prefix: 'emi' });
    expect(resolveOutput('s3://bkt/images', 'bundle').bundle).toEqual({ location: 's3://bkt/images' });
    expect(resolveOutput('dir', 'bundle').driver.name).toBe('raw');
    // -O names another format: the .manifest.xml name is only a name.
    expect(resolveOutput('x.manifest.xml', 'qcow2').bundle).toBeUndefined();
    expect(() => resolveOutput('dir', 'bundle', { compress: 'gzip' })).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
  });

  it('a bundle directory may be neither a file nor hold the input among its bundle files', async () => {
    const dir = await tmpDir();
    try {
      await writeFile(dir.file('emi.part.0'), 'x');
      await writeFile(dir.file('other.img'), 'x');
      const out = resolveOutput(dir.path, 'bundle');
      await expect(out.destination.guard([dir.file('emi.part.0')])).rejects.toMatchObject({ code: 'E_SAME_FILE' });
      await out.destination.guard([dir.file('other.img')]);
      await expect(resolveOutput(dir.file('other.img'), 'bundle').destination.guard([])).rejects.toMatchObject({ code: 'E_FILE_TYPE' });
      await expect(convert(dir.file('other.img'), dir.file('x.manifest.xml'))).rejects.toMatchObject({ code: 'E_USAGE' });
    } finally {
      await dir.remove();
    }
  });
});

// The library's other way in and out: a device the caller opened, a Sink the caller wrote.
describe('convert: a BlockDevice input, a Sink output', () => {
  let dir: TmpDir;
  let raw: string;
  let qcow2: string;
  // A fixed CID: the VMDK's is random otherwise.
  const STREAM = { subformat: 'streamOptimized', cid: '0badcafe' };
  beforeAll(async () => {
    dir = await tmpDir('amitrans-api-');
    raw = dir.file('in.raw');
    await writeSparseImage(raw, 6 * 1024 * 1024, 11);
    qcow2 = dir.file('in.qcow2');
    await convert(raw, qcow2);
  });
  afterAll(async () => {
    await dir.remove();
  });
  const gone = (path: string): Promise<boolean> => access(path).then(() => false, () => true);

  it('a device into an append-only sink (VMDK streamOptimized): the bytes of the conversion by path; the device stays open', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    // The VMDK's descriptor names its file; a sink without a path is named disk.vmdk.
    await mkdir(dir.file('by-path'));
    const byPath = await convert(raw, dir.file('by-path/disk.vmdk'), { options: STREAM, sha256: true });
    const device = await FileDevice.open(raw);
    try {
      const sink = await UserFileSink.create(dir.file('x.vmdk'), { seekable: false });
      const r = await convert(device, sink, { format: 'vmdk', options: STREAM, sha256: true });
      expect([sink.commits, sink.aborts]).toEqual([1, 0]);
      expect(await sha256File(sink.file)).toBe(await sha256File(dir.file('by-path/disk.vmdk')));
      expect(r.sha256).toBe(byPath.sha256);
      expect([r.input, r.output, r.inputFormat, r.format]).toEqual(['<device>', '<sink>', 'raw', 'vmdk']);
      expect(await qemuImgCompare(sink.file, 'vmdk', raw, 'raw')).toBe(true);
      // The caller's device: still open, still readable.
      await device.read(new Uint8Array(512), 0);
    } finally {
      await device.close();
    }
  });

  it('a qcow2 device into qcow2 sinks: as it is when the sink seeks, through a spooled temporary when it cannot; the same disk as by path', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    await convert(qcow2, dir.file('path.qcow2'), { format: 'qcow2' });
    const device = await FileDevice.open(qcow2);
    try {
      for (const seekable of [true, false]) {
        const sink = await UserFileSink.create(dir.file(`sink-${seekable}.qcow2`), { seekable });
        const r = await convert(device, sink, { format: 'qcow2', name: 'my disk', outputName: 'my sink', sha256: true });
        expect([sink.commits, sink.aborts]).toEqual([1, 0]);
        expect([r.input, r.output, r.inputFormat]).toEqual(['my disk', 'my sink', 'qcow2']);
        // The hash of a seek-back format into a sink is taken of what was copied into it.
        expect(r.sha256).toBe(await sha256File(sink.file));
        expect((await qemuImgCheck(sink.file, 'qcow2')).code).toBe(0);
        expect(await qemuImgCompare(sink.file, 'qcow2', dir.file('path.qcow2'), 'qcow2')).toBe(true);
        expect(await qemuImgCompare(sink.file, 'qcow2', raw, 'raw')).toBe(true);
      }
    } finally {
      await device.close();
    }
  });

  it('a compressed output into a sink is asked for with the compress option: the bytes of x.raw.gz by path', async () => {
    await convert(raw, dir.file('path.raw.gz'));
    const sink = await UserFileSink.create(dir.file('sink.raw.gz'), { seekable: false });
    const r = await convert(raw, sink, { format: 'raw', options: { compress: 'gzip' } });
    expect(r.compression).toBe('gzip');
    expect(await sha256File(sink.file)).toBe(await sha256File(dir.file('path.raw.gz')));
  });

  it('refused or failed: E_USAGE without a format or for a bundle, the read error of a closed device; the sink aborted once, nothing left', async () => {
    const cases: [() => Promise<unknown>, string][] = [];
    const sinks: UserFileSink[] = [];
    const next = async (): Promise<UserFileSink> => {
      const s = await UserFileSink.create(dir.file(`failed-${sinks.length}`), { seekable: true });
      sinks.push(s);
      return s;
    };
    cases.push([async () => convert(raw, await next()), 'E_USAGE']);
    cases.push([async () => convert(raw, await next(), { format: 'bundle' }), 'E_USAGE']);
    const closed = await FileDevice.open(raw);
    await closed.close();
    cases.push([async () => convert(closed, await next(), { format: 'qcow2' }), 'E_CLOSED']);
    for (const [run, code] of cases) await expect(run()).rejects.toMatchObject({ code });
    for (const s of sinks) {
      expect([s.commits, s.aborts]).toEqual([0, 1]);
      expect(await gone(s.file)).toBe(true);
    }
    // A path output is still compared with a path input.
    await expect(convert(raw, raw, { format: 'raw' })).rejects.toMatchObject({ code: 'E_SAME_FILE' });
  });
});
