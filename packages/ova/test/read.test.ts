import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice, ImageError, MemoryDevice } from '@amitrans/block';
import { prng, requireTools, run, tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { isOvaError, openOva, parseOvf, parseXml, readTarEntries, serializeTarHeader, type OvaRefusal } from '../src/index.js';
import { makeOva, readAll, tarOf } from './helpers.js';

let dir: TmpDir;
let raw = '';
let ours: Uint8Array;
const SIZE = 2 * 1024 * 1024;

beforeAll(async () => {
  dir = await tmpDir();
  raw = dir.file('disk.raw');
  await writeSparseImage(raw, SIZE, 7);
  await makeOva(raw, dir.file('vm.ova'));
  ours = await readFile(dir.file('vm.ova'));
});
afterAll(async () => {
  await dir?.remove();
});

async function openBytes(bytes: Uint8Array, verifyManifest = true): Promise<Uint8Array> {
  const container = new MemoryDevice(bytes.length);
  container.bytes.set(bytes);
  const a = await openOva(container, { verifyManifest });
  try {
    return await readAll(a.disks[0]!.device);
  } finally {
    await a.close();
  }
}

async function refusal(bytes: Uint8Array): Promise<ImageError> {
  try {
    await openBytes(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(ImageError);
    return err as ImageError;
  }
  throw new Error('the archive was accepted');
}

async function expectRefused(bytes: Uint8Array, reason: OvaRefusal, code: string): Promise<void> {
  const err = await refusal(bytes);
  expect(isOvaError(err, reason), `${err.message}`).toBe(true);
  expect(err.code).toBe(code);
}

function ovfFor(href: string, extra = ''): Uint8Array {
  return Buffer.from(`<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:id="f1" ovf:href="${href}"/></References>
  <DiskSection><Info>d</Info><Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="${SIZE}"/></DiskSection>
  <VirtualSystem ovf:id="vm"><Info>vm</Info></VirtualSystem>${extra}
</Envelope>
`);
}

/** The members of our own OVA, by name. */
async function ourMembers(): Promise<Map<string, { headerOffset: number; dataOffset: number; size: number }>> {
  const dev = new MemoryDevice(ours.length);
  dev.bytes.set(ours);
  return new Map((await readTarEntries(dev)).map((e) => [e.name, e]));
}

describe('appliances made by other tools', () => {
  it('reads a GNU-tar OVA of a qemu-img VMDK, with prefixed OVF elements and a --tag manifest right after the OVF', async (ctx) => {
    requireTools(ctx, 'qemu-img', 'tar', 'sha256sum');
    const src = dir.file('other');
    await mkdir(src);
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, `${src}/disk-1.vmdk`]);
    // Every element under an "ovf:" prefix and RASD under "ns2:", as some exporters write.
    await writeFile(`${src}/other.ovf`, `<?xml version="1.0" encoding="UTF-8"?>
<!-- made by hand -->
<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ns2="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <ovf:References><ovf:File ovf:href="disk-1.vmdk" ovf:id="file-a"/></ovf:References>
  <ovf:DiskSection><ovf:Info>Disks</ovf:Info>
    <ovf:Disk ovf:capacity="2" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="disk-a" ovf:fileRef="file-a" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </ovf:DiskSection>
  <ovf:VirtualSystem ovf:id="other"><ovf:Info>A VM</ovf:Info>
    <ovf:VirtualHardwareSection><ovf:Info>hw</ovf:Info>
      <ovf:Item><ns2:InstanceID>7</ns2:InstanceID><ns2:ResourceType>6</ns2:ResourceType></ovf:Item>
      <ovf:Item><ns2:HostResource>ovf:/disk/disk-a</ns2:HostResource><ns2:InstanceID>8</ns2:InstanceID><ns2:Parent>7</ns2:Parent><ns2:ResourceType>17</ns2:ResourceType></ovf:Item>
    </ovf:VirtualHardwareSection>
  </ovf:VirtualSystem>
</ovf:Envelope>
`);
    const tag = (await run('sha256sum', ['--tag', 'other.ovf', 'disk-1.vmdk'], { cwd: src })).stdout;
    expect(tag).toMatch(/^SHA256 \(other\.ovf\) = /);
    await writeFile(`${src}/other.mf`, tag);
    const ova = dir.file('other.ova');
    await run('tar', ['--format=ustar', '-cf', ova, '-C', src, 'other.ovf', 'other.mf', 'disk-1.vmdk']);
    const container = await FileDevice.open(ova);
    const a = await openOva(container);
    try {
      expect(a.manifest?.verified).toBe(true);
      expect(a.disks.map((d) => [d.diskId, d.capacity])).toEqual([['disk-a', SIZE]]);
      expect(Buffer.compare(await readAll(a.disks[0]!.device), await readFile(raw))).toBe(0);
    } finally {
      await a.close();
      await container.close();
    }
  });

  it('reads an archive whose members GNU tar wrote as ./name, and one without a manifest', async (ctx) => {
    requireTools(ctx, 'tar');
    const src = dir.file('dot');
    await mkdir(src);
    const members = await ourMembers();
    const vmdk = members.get('vm-disk001.vmdk')!;
    await writeFile(`${src}/a.ovf`, ovfFor('./d.vmdk'));
    await writeFile(`${src}/d.vmdk`, ours.subarray(vmdk.dataOffset, vmdk.dataOffset + vmdk.size));
    const ova = dir.file('dot.ova');
    await run('tar', ['--format=gnu', '-cf', ova, '-C', src, './a.ovf', './d.vmdk']);
    expect(Buffer.compare(await openBytes(await readFile(ova)), await readFile(raw))).toBe(0);
  });
});

describe('refusals: a typed error, nothing read past it', () => {
  it('a member name that climbs out of the archive', async () => {
    const members = await ourMembers();
    const vmdk = members.get('vm-disk001.vmdk')!;
    const data = ours.subarray(vmdk.dataOffset, vmdk.dataOffset + vmdk.size);
    for (const name of ['../evil.vmdk', 'a/../../evil.vmdk', '/etc/evil.vmdk', 'C:\\evil.vmdk', 'dir\\..\\evil.vmdk']) {
      await expectRefused(tarOf([{ name: 'vm.ovf', data: ovfFor('vm.vmdk') }, { name, data }]), 'unsafe-name', 'E_CORRUPT');
    }
    // ...and an OVF href that does the same, even when a member of that name exists.
    for (const href of ['../evil.vmdk', '/evil.vmdk', 'sub/../../evil.vmdk']) {
      await expectRefused(tarOf([{ name: 'vm.ovf', data: ovfFor(href) }, { name: 'evil.vmdk', data }]), 'unsafe-name', 'E_CORRUPT');
    }
  });

  it('an OVF naming a file the archive does not hold', async () => {
    const members = await ourMembers();
    const vmdk = members.get('vm-disk001.vmdk')!;
    const data = ours.subarray(vmdk.dataOffset, vmdk.dataOffset + vmdk.size);
    await expectRefused(tarOf([{ name: 'vm.ovf', data: ovfFor('gone.vmdk') }, { name: 'here.vmdk', data }]), 'missing-file', 'E_CORRUPT');
    await expectRefused(tarOf([{ name: 'vm.ovf', data: ovfFor('http://example.com/disk.vmdk') }]), 'missing-file', 'E_UNSUPPORTED');
    // A manifest line for a member that is not there.
    await expectRefused(tarOf([
      { name: 'vm.ovf', data: ovfFor('here.vmdk') },
      { name: 'here.vmdk', data },
      { name: 'vm.mf', data: Buffer.from(`SHA1(ghost.vmdk)= ${'0'.repeat(40)}\n`) },
    ]), 'missing-file', 'E_CORRUPT');
  });

  it('a manifest digest that does not match, for the disk and for the OVF', async () => {
    const members = await ourMembers();
    const vmdk = members.get('vm-disk001.vmdk')!;
    // One bit of compressed grain data flipped (past the header and descriptor).
    const flipped = Uint8Array.from(ours);
    flipped[vmdk.dataOffset + 65536 + 100]! ^= 0x01;
    await expectRefused(flipped, 'manifest-mismatch', 'E_BAD_CHECKSUM');
    // One byte of the OVF text changed without changing its length.
    const ovf = members.get('vm.ovf')!;
    const text = Uint8Array.from(ours);
    const at = Buffer.from(text.subarray(ovf.dataOffset, ovf.dataOffset + ovf.size)).indexOf('A virtual machine');
    text[ovf.dataOffset + at] = 'a'.charCodeAt(0);
    await expectRefused(text, 'manifest-mismatch', 'E_BAD_CHECKSUM');
    // Without verification the flipped OVF text still reads (it is well-formed).
    expect(Buffer.compare(await openBytes(text, false), await readFile(raw))).toBe(0);
  });

  it('a VMDK longer than its tar entry, by one sector up to a grain', async () => {
    const members = await ourMembers();
    const vmdk = members.get('vm-disk001.vmdk')!;
    for (const short of [512, 1024, 1536, 4096, 65536]) {
      const bytes = Uint8Array.from(ours);
      bytes.set(serializeTarHeader({ name: 'vm-disk001.vmdk', size: vmdk.size - short, mtime: 1700000000 }), vmdk.headerOffset);
      await expectRefused(bytes, 'entry-overrun', 'E_CORRUPT');
    }
  });

  it('an archive cut short', async () => {
    const members = await ourMembers();
    const vmdk = members.get('vm-disk001.vmdk')!;
    await expectRefused(ours.subarray(0, vmdk.dataOffset + 4096), 'entry-overrun', 'E_TRUNCATED');
  });

  it('no OVF at all, and an OVF that is not XML', async () => {
    await expectRefused(tarOf([{ name: 'disk.vmdk', data: new Uint8Array(1024) }]), 'no-descriptor', 'E_CORRUPT');
    await expectRefused(tarOf([{ name: 'vm.ovf', data: Buffer.from('<Envelope><References></Envelope>') }]), 'bad-descriptor', 'E_CORRUPT');
    await expectRefused(tarOf([{ name: 'vm.ovf', data: Buffer.from('<!DOCTYPE x [<!ENTITY a "b">]><Envelope/>') }]), 'bad-descriptor', 'E_CORRUPT');
  });
});

describe('fuzz', () => {
  it('thousands of mutated archives give an ImageError or a disk, never another exception', async () => {
    const rnd = prng(2024);
    const members = await ourMembers();
    const ovf = members.get('vm.ovf')!;
    const mf = members.get('vm.mf')!;
    // Mutations aimed at the structures: the three headers, the OVF text, the manifest, the VMDK head and tail.
    const vmdk = members.get('vm-disk001.vmdk')!;
    const targets = [
      [0, 512], [ovf.dataOffset, ovf.size], [vmdk.headerOffset, 512], [vmdk.dataOffset, 1024],
      [vmdk.dataOffset + vmdk.size - 2048, 2048], [mf.headerOffset, 512], [mf.dataOffset, mf.size], [ours.length - 1024, 1024],
    ] as const;
    let refused = 0;
    for (let i = 0; i < 2500; i++) {
      const bytes = Uint8Array.from(ours);
      const [start, length] = targets[rnd.int(0, targets.length - 1)]!;
      for (let k = rnd.int(1, 4); k > 0; k--) {
        const at = start + rnd.int(0, length - 1);
        const r = rnd.next();
        bytes[at] = r < 0.3 ? 0 : r < 0.5 ? 0xff : r < 0.7 ? '<>&"/:.9'.charCodeAt(rnd.int(0, 7)) : rnd.int(0, 255);
      }
      try {
        await openBytes(bytes, rnd.next() < 0.5);
      } catch (err) {
        if (!(err instanceof ImageError)) throw new Error(`mutation ${i}: ${(err as Error).stack}`);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(100);
  });

  it('the XML reader and OVF parser only ever throw ImageError on mangled descriptors', () => {
    const rnd = prng(99);
    const base = Buffer.from(ours.subarray(512, 512 + 4000)).toString('latin1');
    for (let i = 0; i < 5000; i++) {
      const chars = base.split('');
      for (let k = rnd.int(1, 6); k > 0; k--) {
        const at = rnd.int(0, chars.length - 1);
        const r = rnd.next();
        if (r < 0.3) chars.splice(at, rnd.int(1, 40));
        else chars[at] = '<>&;"=/!?#x'.charAt(rnd.int(0, 10));
      }
      const text = chars.join('');
      for (const f of [() => parseXml(text), () => parseOvf(Buffer.from(text, 'latin1'))]) {
        try {
          f();
        } catch (err) {
          if (!(err instanceof ImageError)) throw new Error(`mutation ${i}: ${(err as Error).stack}`);
        }
      }
    }
  });
});
