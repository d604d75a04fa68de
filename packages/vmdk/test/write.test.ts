import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice, MemorySink, ZeroDevice, view } from '@amitrans/block';
import { requireTools, run, sha256File, tmpDir, writeSparseImage, type SparseLayout, type TmpDir, GuardedSource, expectSameAsFile, fileSink, outcome, streamSinkTo } from '@amitrans/testkit';
import { vmdkDriver } from '../src/index.js';

let dir: TmpDir;
const SIZE = 37 * 1024 * 1024 + 13 * 512; // two grain tables, not a multiple of 1 MiB
let layout: SparseLayout;

beforeAll(async () => {
  dir = await tmpDir();
  layout = await writeSparseImage(dir.file('src.raw'), SIZE, 3);
});
afterAll(() => dir.remove());

async function writeWith(name: string, options: Record<string, string>, stream = false): Promise<string> {
  const out = dir.file(name);
  const src = await GuardedSource.open(dir.file('src.raw'), layout);
  const sink = stream ? streamSinkTo(out) : await fileSink(out);
  const result = await vmdkDriver.write!(src, sink, { options });
  await sink.commit();
  const dataBytes = layout.runs.filter((r) => r.kind === 'data').reduce((n, r) => n + r.length, 0);
  expect(result.bytesRead).toBe(dataBytes);
  await src.close();
  return out;
}

async function oracle(out: string, createType: string): Promise<void> {
  await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vmdk', dir.file('src.raw'), out]);
  await run('qemu-img', ['check', '-f', 'vmdk', out]);
  const info = JSON.parse((await run('qemu-img', ['info', '--output=json', out])).stdout) as {
    format: string;
    'virtual-size': number;
    'format-specific': { data: { 'create-type': string } };
  };
  expect(info.format).toBe('vmdk');
  expect(info['virtual-size']).toBe(SIZE);
  expect(info['format-specific'].data['create-type']).toBe(createType);
  const file = await FileDevice.open(out);
  const dev = await vmdkDriver.open!(file);
  await expectSameAsFile(dev, dir.file('src.raw'));
  await file.close();
}

/** Walk a pure stream front to back as VirtualBox's sequential reader does. */
function walkStream(bytes: Uint8Array): { lbas: number[]; types: number[] } {
  const dv = view(bytes);
  const overHead = Number(dv.getBigUint64(64, true));
  const lbas: number[] = [];
  const types: number[] = [];
  let at = overHead * 512;
  while (at < bytes.length) {
    const value = Number(dv.getBigUint64(at, true));
    const size = dv.getUint32(at + 8, true);
    if (size !== 0) {
      lbas.push(value);
      at += Math.ceil((12 + size) / 512) * 512;
      continue;
    }
    const type = dv.getUint32(at + 12, true);
    types.push(type);
    if (type === 0) break;
    at += 512 + value * 512;
  }
  return { lbas, types };
}

describe('VMDK writer, checked by qemu-img', () => {
  it('writes monolithicSparse (the default, as qemu-img) to a file and to a stream', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    await oracle(await writeWith('ms.vmdk', {}), 'monolithicSparse');
    expect(vmdkDriver.canStream!({})).toBe(true);
    await oracle(await writeWith('ms-stream.vmdk', {}, true), 'monolithicSparse');
  });

  it('writes streamOptimized in the pure stream form, one pass to a stream', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    expect(vmdkDriver.canStream!({ subformat: 'streamOptimized' })).toBe(true);
    const out = await writeWith('so.vmdk', { subformat: 'streamOptimized', cid: '0badcafe' }, true);
    await oracle(out, 'streamOptimized');
    const bytes = await readFile(out);
    const dv = view(bytes);
    expect(dv.getUint32(4, true)).toBe(3); // version 3 (ESXi)
    expect(dv.getUint32(8, true)).toBe(0x30001); // newline | compressed | markers, no redundant GD
    expect(dv.getBigUint64(20, true)).toBe(128n);
    expect(dv.getBigUint64(56, true)).toBe(0xffffffffffffffffn); // GD_AT_END
    expect(dv.getUint16(77, true)).toBe(1);
    // Footer: a header copy with the real gdOffset, then the EOS marker.
    const footer = bytes.subarray(bytes.length - 1024, bytes.length - 512);
    expect(Buffer.from(footer.subarray(0, 4)).toString('latin1')).toBe('KDMV');
    expect(view(footer).getBigUint64(56, true)).not.toBe(0xffffffffffffffffn);
    expect(bytes.subarray(bytes.length - 512).every((b) => b === 0)).toBe(true);
    // Grains ascend; GT markers after their grains; then GD, footer, EOS.
    const { lbas, types } = walkStream(bytes);
    expect(lbas.length).toBeGreaterThan(10);
    expect([...lbas].sort((a, b) => a - b)).toEqual(lbas);
    expect(types.slice(-3)).toEqual([2, 3, 0]);
    expect(types.filter((t) => t === 1).length).toBe(2);
    // Descriptor: not indented, LF only, the DDB keys VMware and VirtualBox look for, slack after it.
    const desc = Buffer.from(bytes.subarray(512, 512 * 21)).toString('latin1').replace(/\0+$/, '');
    expect(desc).not.toMatch(/\r/);
    expect(desc.split('\n').every((l) => !/^\s/.test(l))).toBe(true);
    expect(desc).toContain('CID=0badcafe\n');
    expect(desc).toContain('createType="streamOptimized"');
    expect(desc).toContain('ddb.virtualHWVersion = "4"');
    expect(desc).toContain('ddb.adapterType = "ide"');
    expect(desc).toContain('ddb.geometry.heads = "16"');
    expect(desc).toContain('ddb.geometry.sectors = "63"');
    expect(desc).toContain('ddb.toolsVersion = "2147483647"');
    expect(desc.length).toBeLessThan(512 * 10);
  });

  it('writes the same bytes twice with a fixed CID (compression order is deterministic)', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    // Same file name both times: the descriptor's extent line names the file.
    const first = await sha256File(await writeWith('d.vmdk', { subformat: 'streamOptimized', cid: '12345678' }));
    const second = await sha256File(await writeWith('d.vmdk', { subformat: 'streamOptimized', cid: '12345678' }));
    expect(second).toBe(first);
  });

  it('sets SCSI geometry for adapter_type=lsilogic', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const out = await writeWith('scsi.vmdk', { subformat: 'streamOptimized', adapter_type: 'lsilogic' });
    await oracle(out, 'streamOptimized');
    const desc = Buffer.from((await readFile(out)).subarray(512, 512 * 21)).toString('latin1');
    expect(desc).toContain('ddb.adapterType = "lsilogic"');
    expect(desc).toContain('ddb.geometry.heads = "255"');
    expect(desc).toContain(`ddb.geometry.cylinders = "${Math.floor(Math.ceil(SIZE / 512) / (255 * 63))}"`);
  });

  it('writes an all-hole disk with no grains and no grain tables', async () => {
    const sink = new MemorySink();
    const r = await vmdkDriver.write!(new ZeroDevice(100 * 1024 * 1024), sink, { options: { subformat: 'streamOptimized' } });
    await sink.commit();
    expect(r.bytesRead).toBe(0);
    const { lbas, types } = walkStream(sink.bytes);
    expect(lbas).toEqual([]);
    expect(types).toEqual([2, 3, 0]);
  });

  it('refuses unknown options and subformats', async () => {
    const src = new ZeroDevice(1 << 20);
    expect(await outcome(vmdkDriver.write!(src, new MemorySink(), { options: { subformat: 'monolithicFlat' } }))).toBe('E_UNSUPPORTED');
    expect(await outcome(vmdkDriver.write!(src, new MemorySink(), { options: { adapter_type: 'floppy' } }))).toBe('E_UNSUPPORTED');
    expect(await outcome(vmdkDriver.write!(src, new MemorySink(), { options: { cid: 'ffffffff' } }))).toBe('E_UNSUPPORTED');
    expect(await outcome(vmdkDriver.write!(src, new MemorySink(), { options: { bogus: '1' } }))).toBe('E_UNSUPPORTED');
    expect(vmdkDriver.canStream!({ bogus: '1' })).toBe(false);
  });
});
