import { createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice, StreamSink } from '@amitrans/block';
import { qemuImgCompare, requireTools, run, sha256File, tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { openOva, parseManifest, parseOvf, parseXml, RESOURCE_TYPE, allocationUnitBytes, type XmlElement } from '../src/index.js';
import { writeOva } from '../src/writer.js';
import { FIXED, makeOva, readAll } from './helpers.js';

let dir: TmpDir;
let raw = '';
const SIZE = 6 * 1024 * 1024 + 512 * 3; // not a whole MiB: the capacity must still be exact

beforeAll(async () => {
  dir = await tmpDir();
  raw = dir.file('disk.raw');
  await writeSparseImage(raw, SIZE, 61);
});
afterAll(async () => {
  await dir?.remove();
});

async function tarList(path: string): Promise<string[]> {
  return (await run('tar', ['-tf', path])).stdout.split('\n').filter(Boolean);
}

async function extract(ova: string, name: string): Promise<string> {
  const to = dir.file(name);
  await mkdir(to, { recursive: true });
  await run('tar', ['-xf', ova, '-C', to]);
  return to;
}

function all(el: XmlElement, local: string, out: XmlElement[] = []): XmlElement[] {
  for (const c of el.children) {
    if (c.local === local) out.push(c);
    all(c, local, out);
  }
  return out;
}
const text = (el: XmlElement, local: string): string | undefined => el.children.find((c) => c.local === local)?.text.trim();

describe('an OVA written to a file', () => {
  let ova = '';
  beforeAll(async () => {
    ova = dir.file('vm.ova');
    await makeOva(raw, ova);
  });

  it('is a tar with the OVF first, then the VMDK, then the manifest', async (ctx) => {
    requireTools(ctx, 'tar');
    expect(await tarList(ova)).toEqual(['vm.ovf', 'vm-disk001.vmdk', 'vm.mf']);
    // Listed the way GNU tar prints USTAR members: mode, owner, size.
    const long = (await run('tar', ['-tvf', ova])).stdout;
    expect(long).toMatch(/^-rw-r--r-- 0\/0 /m);
  });

  it('holds a VMDK that qemu-img finds identical to the source, and that is streamOptimized', async (ctx) => {
    requireTools(ctx, 'tar', 'qemu-img');
    const out = await extract(ova, 'x1');
    expect(await qemuImgCompare(raw, 'raw', `${out}/vm-disk001.vmdk`, 'vmdk')).toBe(true);
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', `${out}/vm-disk001.vmdk`])).stdout) as { 'virtual-size': number; 'format-specific': { data: { 'create-type': string } } };
    expect(info['format-specific'].data['create-type']).toBe('streamOptimized');
    expect(info['virtual-size']).toBe(SIZE);
  });

  it('has a manifest that sha1sum -c verifies, one exact `SHA1(name)= hex` line per other member', async (ctx) => {
    requireTools(ctx, 'tar', 'sha1sum');
    const out = await extract(ova, 'x2');
    const check = await run('sha1sum', ['-c', 'vm.mf'], { cwd: out });
    expect(check.stdout).toBe('vm.ovf: OK\nvm-disk001.vmdk: OK\n');
    const mf = await readFile(`${out}/vm.mf`, 'utf8');
    expect(mf).toMatch(/^SHA1\(vm\.ovf\)= [0-9a-f]{40}\nSHA1\(vm-disk001\.vmdk\)= [0-9a-f]{40}\n$/);
  });

  it('has a well-formed OVF (xmllint) that follows the structural rules', async (ctx) => {
    requireTools(ctx, 'tar', 'xmllint');
    const out = await extract(ova, 'x3');
    await run('xmllint', ['--noout', `${out}/vm.ovf`]);
    // Independent of our parser: xmllint's XPath finds the disk's Parent and the controller.
    const xp = async (expr: string): Promise<string> => (await run('xmllint', ['--xpath', expr, `${out}/vm.ovf`])).stdout.trim();
    const parent = await xp("string(//*[local-name()='Item'][*[local-name()='ResourceType']='17']/*[local-name()='Parent'])");
    expect(await xp(`string(//*[local-name()='Item'][*[local-name()='InstanceID']='${parent}']/*[local-name()='ResourceType'])`)).toBe('5');
    expect(await xp("string(//*[local-name()='VirtualSystemType'])")).toMatch(/^vmx-\d+$/);

    const root = parseXml(await readFile(`${out}/vm.ovf`, 'utf8'));
    expect(root.local).toBe('Envelope');
    // References name exactly the members of the archive that follow the OVF.
    const files = all(root, 'File');
    expect(files.map((f) => f.attributes.get('ovf:href'))).toEqual(['vm-disk001.vmdk']);
    // Capacity times its units is the virtual size, whatever the file holds.
    const [disk] = all(root, 'Disk');
    const cap = Number(disk!.attributes.get('ovf:capacity')) * allocationUnitBytes(disk!.attributes.get('ovf:capacityAllocationUnits'));
    expect(cap).toBe(SIZE);
    expect(disk!.attributes.get('ovf:format')).toBe('http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized');
    // Every Parent names an existing Item; every disk HostResource names a Disk.
    const items = all(root, 'Item');
    const ids = new Set(items.map((i) => text(i, 'InstanceID')));
    expect(ids.size).toBe(items.length);
    for (const it of items) {
      const p = text(it, 'Parent');
      if (p !== undefined) expect(ids.has(p)).toBe(true);
      if (text(it, 'ResourceType') === String(RESOURCE_TYPE.disk)) {
        expect(text(it, 'HostResource')).toBe(`ovf:/disk/${disk!.attributes.get('ovf:diskId')}`);
        expect(p).toBeDefined();
      }
    }
    // CIM's RASD schema is an xs:sequence in alphabetical order; VMware validates it.
    for (const it of items) {
      const names = it.children.map((c) => c.local);
      expect(names).toEqual([...names].sort());
    }
    // Exactly one NIC (E1000) on a network the NetworkSection declares.
    const nics = items.filter((i) => text(i, 'ResourceType') === '10');
    expect(nics.map((n) => text(n, 'ResourceSubType'))).toEqual(['E1000']);
    expect(all(root, 'Network').map((n) => n.attributes.get('ovf:name'))).toEqual([text(nics[0]!, 'Connection')]);
    // Vendor (non-OVF) elements are optional for readers that do not know them.
    for (const el of all(root, 'OSType').concat(all(root, 'Machine'))) expect(el.attributes.get('ovf:required')).toBe('false');
    expect(all(root, 'OperatingSystemSection')[0]!.attributes.get('ovf:id')).toBe('101');
  });

  it('reads back through openOva: verified manifest, the disk equal to the source', async () => {
    const container = await FileDevice.open(ova);
    const a = await openOva(container);
    try {
      expect(a.manifest?.verified).toBe(true);
      expect(a.warnings).toEqual([]);
      expect(a.disks.map((d) => [d.href, d.capacity, d.device.size])).toEqual([['vm-disk001.vmdk', SIZE, SIZE]]);
      expect(Buffer.compare(await readAll(a.disks[0]!.device), await readFile(raw))).toBe(0);
    } finally {
      await a.close();
      await container.close();
    }
  });

  it('is reproducible: the same options give the same bytes', async () => {
    const again = dir.file('again/vm.ova');
    await mkdir(dir.file('again'));
    await makeOva(raw, again);
    expect(await sha256File(again)).toBe(await sha256File(ova));
  });
});

describe('options', () => {
  it('OVF 2.0 has a SHA-256 manifest that sha256sum -c verifies and the OVF 2 namespace', async (ctx) => {
    requireTools(ctx, 'tar', 'sha256sum', 'xmllint');
    const ova = dir.file('v2.ova');
    await makeOva(raw, ova, { ovf_version: '2.0', name: 'Two Point O', controller: 'sata', nic: 'virtio', cpus: '2', memory: '2048', distro: 'debian', arch: 'x86_64' });
    expect(await tarList(ova)).toEqual(['Two_Point_O.ovf', 'Two_Point_O-disk001.vmdk', 'Two_Point_O.mf']);
    const out = await extract(ova, 'v2');
    expect((await run('sha256sum', ['-c', 'Two_Point_O.mf'], { cwd: out })).stdout).toBe('Two_Point_O.ovf: OK\nTwo_Point_O-disk001.vmdk: OK\n');
    expect(await readFile(`${out}/Two_Point_O.mf`, 'utf8')).toMatch(/^SHA256\(Two_Point_O\.ovf\)= [0-9a-f]{64}\nSHA256\(Two_Point_O-disk001\.vmdk\)= [0-9a-f]{64}\n$/);
    await run('xmllint', ['--noout', `${out}/Two_Point_O.ovf`]);
    const ovf = await readFile(`${out}/Two_Point_O.ovf`);
    const d = parseOvf(ovf);
    expect(d.version).toBe('2.0');
    expect(ovf.toString()).toContain('xmlns="http://schemas.dmtf.org/ovf/envelope/2"');
    const sys = d.systems[0]!;
    expect(sys.name).toBe('Two Point O');
    expect(sys.os).toEqual({ id: 96, description: 'Debian 64-Bit' });
    const byType = (t: number) => sys.items.filter((i) => i.resourceType === t);
    expect(byType(RESOURCE_TYPE.sataController).map((i) => i.resourceSubType)).toEqual(['AHCI']);
    expect(byType(RESOURCE_TYPE.disk)[0]!.parent).toBe(byType(RESOURCE_TYPE.sataController)[0]!.instanceId);
    expect(byType(RESOURCE_TYPE.processor)[0]!.virtualQuantity).toBe('2');
    expect(byType(RESOURCE_TYPE.memory)[0]!.virtualQuantity).toBe('2048');
    expect(byType(RESOURCE_TYPE.ethernetAdapter).map((i) => i.resourceSubType)).toEqual(['virtio']);
  });

  it('vbox_machine=on adds a VirtualBox section whose attachment is the OVF disk', async (ctx) => {
    requireTools(ctx, 'tar', 'xmllint');
    const ova = dir.file('vbox.ova');
    await makeOva(raw, ova, { vbox_machine: 'on', distro: 'ubuntu' });
    const out = await extract(ova, 'vbox');
    await run('xmllint', ['--noout', `${out}/vbox.ovf`]);
    const root = parseXml(await readFile(`${out}/vbox.ovf`, 'utf8'));
    const [machine] = all(root, 'Machine');
    expect(machine!.attributes.get('ovf:required')).toBe('false');
    expect(machine!.children[0]!.name).toBe('ovf:Info');
    expect(machine!.attributes.get('uuid')).toBe(`{${FIXED.uuid}}`);
    expect(machine!.attributes.get('OSType')).toBe('Ubuntu_64');
    const diskUuid = all(root, 'Disk')[0]!.attributes.get('vbox:uuid');
    expect(diskUuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(all(machine!, 'Image').map((i) => i.attributes.get('uuid'))).toEqual([`{${diskUuid}}`]);
    expect(all(machine!, 'HardDisk').map((i) => i.attributes.get('location'))).toEqual(['vbox-disk001.vmdk']);
  });

  it('refuses unknown or bad options before writing', async () => {
    const bad: Record<string, string>[] = [{ nic: 'rtl8139' }, { controller: 'scsi' }, { ovf_version: '0.9' }, { cpus: '0' }, { bogus: '1' }, { uuid: 'x' }];
    for (const o of bad) {
      await expect(makeOva(raw, dir.file('bad.ova'), o)).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    }
    expect((await readdir(dir.path)).filter((f) => f.includes('bad.ova'))).toEqual([]);
  });
});

describe('an OVA written to a stream', () => {
  it('spools the VMDK and gives the same bytes as the file output', async () => {
    const file = dir.file('s/vm.ova');
    await mkdir(dir.file('s'));
    await makeOva(raw, file);
    const streamed = dir.file('streamed.bin');
    const disk = await FileDevice.open(raw);
    const stream = createWriteStream(streamed);
    const sink = new StreamSink(stream);
    // A stream has no file name: name the machine as the file output was named.
    await writeOva(disk, sink, { options: { ...FIXED, name: 'vm' } });
    await sink.commit();
    await disk.close();
    expect(await sha256File(streamed)).toBe(await sha256File(file));
  });
});

describe('tar size fields', () => {
  it('a member of 9 GiB gets a base-256 size that GNU tar lists and our walker reads', async (ctx) => {
    requireTools(ctx, 'tar');
    const { serializeTarHeader, readTarEntries } = await import('../src/index.js');
    const big = 9 * 1024 ** 3 + 512;
    const path = dir.file('big.tar');
    // Sparse: the header, a 9 GiB hole, then the end-of-archive blocks.
    await writeFile(path, serializeTarHeader({ name: 'big.vmdk', size: big, mtime: 0 }));
    const fh = await import('node:fs/promises').then((m) => m.open(path, 'r+'));
    await fh.truncate(512 + big + 1024);
    await fh.close();
    expect((await stat(path)).size).toBe(512 + big + 1024);
    const listing = (await run('tar', ['-tvf', path])).stdout;
    expect(listing).toContain(` ${big} `);
    const dev = await FileDevice.open(path);
    expect(await readTarEntries(dev)).toEqual([{ name: 'big.vmdk', typeflag: '0', headerOffset: 0, dataOffset: 512, size: big }]);
    await dev.close();
  });

  it('reads pax size and path records and GNU long names (from GNU tar itself)', async (ctx) => {
    requireTools(ctx, 'tar');
    const { readTarEntries } = await import('../src/index.js');
    const src = dir.file('paxsrc');
    await mkdir(src);
    const long = `${'d'.repeat(120)}.ovf`;
    await writeFile(`${src}/${long}`, 'x'.repeat(1000));
    for (const format of ['pax', 'gnu']) {
      const path = dir.file(`long-${format}.tar`);
      await run('tar', ['--format', format, '-cf', path, '-C', src, long]);
      const dev = await FileDevice.open(path);
      const entries = await readTarEntries(dev);
      await dev.close();
      expect(entries.map((e) => [e.name, e.size])).toEqual([[long, 1000]]);
      const bytes = await readFile(path);
      expect(bytes.subarray(entries[0]!.dataOffset, entries[0]!.dataOffset + 1000).toString()).toBe('x'.repeat(1000));
    }
  });
});

describe('manifest syntax', () => {
  it('parses the exact form and the --tag form, refuses anything else', () => {
    const h = 'a'.repeat(40);
    expect(parseManifest(`SHA1(a.ovf)= ${h}\r\nSHA1 (b.vmdk) = ${h.toUpperCase()}\n`)).toEqual([
      { algorithm: 'SHA1', file: 'a.ovf', digest: h },
      { algorithm: 'SHA1', file: 'b.vmdk', digest: h },
    ]);
    expect(() => parseManifest(`MD5(a)= ${'a'.repeat(32)}`)).toThrow(/not ALG/);
    expect(() => parseManifest(`SHA256(a)= ${h}`)).toThrow(/64/);
  });
});
