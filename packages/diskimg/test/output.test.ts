import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryDevice, MemorySink } from '@amitrans/block';
import { writeFile } from 'node:fs/promises';
import { prng, tmpDir } from '@amitrans/testkit';
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
