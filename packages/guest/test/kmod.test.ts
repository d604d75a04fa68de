import { copyFile, mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { closure, depmodFor, normaliseAlias, parseModulesDep, parseSoftdeps } from '../src/initrd/depmod.js';
import { readKmodIndex, writeKmodIndex, type IndexEntry } from '../src/initrd/kmodindex.js';
import { debianModuleTree } from './kmod-fixtures.js';

let tmp: TmpDir;
beforeAll(async () => {
  tmp = await tmpDir('amitrans-kmod-');
});
afterAll(async () => {
  await tmp.remove();
});

const sorted = (e: IndexEntry[]): IndexEntry[] => [...e].sort((a, b) => (a.key + '\0' + a.value < b.key + '\0' + b.value ? -1 : 1));

describe('kmod binary index', () => {
  it('round-trips keys that share prefixes, keys that are prefixes of others, and several values per key', () => {
    const entries: IndexEntry[] = [
      { key: 'virtio_blk', value: 'a', priority: 3 },
      { key: 'virtio', value: 'b', priority: 1 },
      { key: 'virtio_net', value: 'c', priority: 2 },
      { key: 'v', value: 'd', priority: 0 },
      { key: 'xen_blkfront', value: 'e', priority: 4 },
      { key: 'virtio', value: 'f', priority: 0 },
      { key: 'pci:v00001AF4d*sv*sd*bc*sc*i*', value: 'virtio_pci', priority: 9 },
    ];
    const back = readKmodIndex(writeKmodIndex(entries));
    expect(sorted(back)).toEqual(sorted(entries));
    // Values of one key come out in priority order, as modprobe expects.
    expect(back.filter((e) => e.key === 'virtio').map((e) => e.value)).toEqual(['f', 'b']);
  });

  it('refuses keys that are not 7-bit ASCII', () => {
    expect(() => writeKmodIndex([{ key: 'caf\u00e9', value: 'x', priority: 0 }])).toThrow(/7-bit ASCII/);
  });

  it('normalises aliases as depmod does: "-" to "_" outside [...]', () => {
    expect(normaliseAlias('pci:v*d*sv*sd*bc01sc[0-9]i*-x')).toBe('pci:v*d*sv*sd*bc01sc[0-9]i*_x');
  });
});

describe('depmod output for a module subset (the Debian cloud kernel; depmod and modprobe as oracles)', () => {
  it('closure orders dependencies first', () => {
    const lines = parseModulesDep('a.ko: c.ko b.ko\nb.ko: c.ko\nc.ko:\nd.ko:\n');
    expect(closure(lines, ['a', 'x'], parseSoftdeps('softdep a pre: d\n'))).toEqual({
      order: [lines[2], lines[1], lines[3], lines[0]],
      missing: ['x'],
    });
  });

  it('matches depmod byte for byte and resolves through modprobe with only the .bin files', async (ctx) => {
    const tree = await debianModuleTree(ctx);
    const text = async (n: string): Promise<string> => readFile(join(tree.dir, n), 'utf8');
    const guest = { dep: await text('modules.dep'), alias: await text('modules.alias'), softdep: await text('modules.softdep'), symbols: await text('modules.symbols'), devname: await text('modules.devname') };
    const lines = parseModulesDep(guest.dep);
    const { order, missing } = closure(lines, ['virtio_blk', 'virtio_pci', 'virtio_net', 'virtio_scsi', 'xen-blkfront', 'ata_piix', 'sd_mod'], parseSoftdeps(guest.softdep));
    expect(missing).toEqual([]);
    const paths = order.map((l) => l.path);
    const ours = depmodFor(paths, guest);

    // depmod itself on exactly that set (with modules.order and modules.builtin, as initrd builders copy them).
    const root = join(tmp.path, 'depmod');
    const dir = join(root, 'lib/modules', tree.kver);
    for (const p of paths) {
      await mkdir(dirname(join(dir, p)), { recursive: true });
      await copyFile(join(tree.dir, p), join(dir, p));
    }
    for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) await copyFile(join(tree.dir, f), join(dir, f));
    await run('depmod', ['-b', root, tree.kver]);
    // depmod orders each line's dependencies by a topological sort of direct (symbol) dependencies,
    // which modules.dep does not record: lines and their order must match, each line's dependencies as a set.
    const depLines = (t: string): string[] => t.trim().split('\n').map((l) => { const [k, v = ''] = l.split(':'); return `${k}:${v.trim().split(/\s+/).filter(Boolean).sort().join(' ')}`; });
    const theirDep = await readFile(join(dir, 'modules.dep'), 'utf8');
    expect(depLines(Buffer.from(ours.files.get('modules.dep')!).toString())).toEqual(depLines(theirDep));
    const depIndex = (b: Uint8Array): IndexEntry[] => readKmodIndex(b).map((e) => ({ ...e, value: depLines(e.value)[0]! }));
    expect(sorted(depIndex(ours.files.get('modules.dep.bin')!))).toEqual(sorted(depIndex(await readFile(join(dir, 'modules.dep.bin')))));
    for (const f of ['modules.alias', 'modules.softdep', 'modules.symbols', 'modules.devname', 'modules.alias.bin', 'modules.symbols.bin']) {
      const theirs = await readFile(join(dir, f));
      expect({ f, same: Buffer.compare(Buffer.from(ours.files.get(f)!), theirs) === 0 }).toEqual({ f, same: true });
    }

    // Ours alone (text files removed): modprobe resolves the dependencies through the .bin indexes.
    const mine = join(tmp.path, 'ours');
    const mdir = join(mine, 'lib/modules', tree.kver);
    for (const p of paths) {
      await mkdir(dirname(join(mdir, p)), { recursive: true });
      await copyFile(join(tree.dir, p), join(mdir, p));
    }
    for (const [name, bytes] of ours.files) if (name.endsWith('.bin')) await writeFile(join(mdir, name), bytes);
    const show = await run('modprobe', ['-n', '-v', '-d', mine, '-S', tree.kver, 'virtio_blk']);
    expect(show.stdout.trim().split('\n').map((l) => l.replace(/^insmod /, '').trim())).toEqual([
      join(mdir, 'kernel/drivers/virtio/virtio_ring.ko'),
      join(mdir, 'kernel/drivers/virtio/virtio.ko'),
      join(mdir, 'kernel/drivers/block/virtio_blk.ko'),
    ]);
    // An alias from modules.alias.bin: the virtio PCI device id.
    const byAlias = await run('modprobe', ['-n', '-v', '-d', mine, '-S', tree.kver, 'pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00']);
    expect(byAlias.stdout).toMatch(/virtio_pci\.ko/);
    await unlink(join(mdir, 'modules.dep.bin'));
    const without = await run('modprobe', ['-n', '-v', '-d', mine, '-S', tree.kver, 'virtio_blk']).then(() => 'ok', (e: Error) => e.message);
    expect(without).toMatch(/not found|could not/i);
    await rm(root, { recursive: true, force: true });
  });
});
