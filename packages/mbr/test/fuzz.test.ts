import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageError } from '@amitrans/block';
import { sfdiskImage, prng, requireTools, tmpDir, type TmpDir } from '@amitrans/testkit';
import { parseGptEntry } from '../src/gpt-entry.js';
import { parseGptHeader } from '../src/gpt-header.js';
import { parseMbrSector, readPartitionTable, serializeMbrSector, type PartitionEntry, type PartitionTable } from '../src/index.js';
import { fixGptCrcs, MiB, SectorMapDevice, writeGpt } from './helpers.js';

type Rnd = ReturnType<typeof prng>;
const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[rnd.int(0, xs.length - 1)] as T;

/**
 * A successful read must describe a disk that can be sliced safely: every partition inside
 * the device, numbered once, data partitions disjoint, logicals inside the extended one.
 */
function checkInvariants(t: PartitionTable, size: number): void {
  const seen = new Set<number>();
  for (const p of t.partitions) {
    expect(seen.has(p.index)).toBe(false);
    seen.add(p.index);
    expect(p.sectors).toBeGreaterThan(0);
    expect(p.startSector).toBeGreaterThan(0);
    expect(p.start + p.size).toBeLessThanOrEqual(size);
    expect(p.start).toBe(p.startSector * 512);
  }
  const data = t.partitions.filter((p) => p.kind !== 'extended').sort((a, b) => a.startSector - b.startSector);
  for (let i = 1; i < data.length; i++) {
    const prev = data[i - 1];
    const cur = data[i];
    if (prev && cur) expect(cur.startSector).toBeGreaterThanOrEqual(prev.startSector + prev.sectors);
  }
  const ext = t.partitions.find((p) => p.kind === 'extended');
  for (const p of t.partitions.filter((q) => q.kind === 'logical')) {
    expect(ext).toBeDefined();
    if (!ext) continue;
    expect(p.startSector).toBeGreaterThan(ext.startSector);
    expect(p.startSector + p.sectors).toBeLessThanOrEqual(ext.startSector + ext.sectors);
  }
}

interface Tally { ok: number; codes: Map<string, number>; slowestMs: number }

/** Read, and insist on a valid table or an ImageError; anything else fails with the seed. */
async function readOnce(dev: SectorMapDevice, tally: Tally, seed: number): Promise<void> {
  const t0 = performance.now();
  try {
    const t = await readPartitionTable(dev);
    checkInvariants(t, dev.size);
    tally.ok++;
  } catch (err) {
    if (!(err instanceof ImageError)) throw new Error(`seed ${seed}: ${String(err)}`, { cause: err });
    expect(err.structure).toBeDefined();
    tally.codes.set(err.code, (tally.codes.get(err.code) ?? 0) + 1);
  }
  tally.slowestMs = Math.max(tally.slowestMs, performance.now() - t0);
  // Never a huge allocation, never an unbounded walk.
  expect(dev.largestRead).toBeLessThanOrEqual(1024 * 1024);
  expect(dev.reads).toBeLessThan(1100);
}

const newTally = (): Tally => ({ ok: 0, codes: new Map(), slowestMs: 0 });

const SIZE = 8 * MiB;
const SECTORS = SIZE / 512;
let tmp: TmpDir;
const seeds = new Map<string, SectorMapDevice>();
beforeAll(async () => { tmp = await tmpDir('amitrans-mbr-fuzz-'); });
afterAll(async () => { await tmp.remove(); });

async function seed(name: string, script: string, size = SIZE): Promise<SectorMapDevice> {
  let dev = seeds.get(name);
  if (!dev) {
    const path = tmp.file(`${name}.img`);
    await sfdiskImage(path, size, script);
    dev = await SectorMapDevice.fromFile(path);
    seeds.set(name, dev);
  }
  return dev;
}

const INTERESTING_U32 = [0, 1, 2, 33, 34, 62, 63, 2047, 2048, 4096, SECTORS - 1, SECTORS, SECTORS + 1, 0x7fffffff, 0x80000000, 0xffffffff];
const TYPES = [0x00, 0x05, 0x0f, 0x85, 0xee, 0x83, 0x82, 0x07];

function setU32(buf: Uint8Array, at: number, v: number): void {
  new DataView(buf.buffer, buf.byteOffset, buf.byteLength).setUint32(at, v >>> 0, true);
}

function flipBit(rnd: Rnd, s: Uint8Array): void {
  const at = rnd.int(0, s.length - 1);
  s[at] = (s[at] ?? 0) ^ (1 << rnd.int(0, 7));
}

/** Mutate sector 0 or an EBR: entry fields with interesting values, stray bytes, the signature. */
function mutateTableSector(rnd: Rnd, s: Uint8Array): void {
  const slot = rnd.int(0, 3);
  const e = 0x1be + slot * 16;
  switch (rnd.int(0, 6)) {
    case 0: setU32(s, e + 8, rnd.next() < 0.7 ? pick(rnd, INTERESTING_U32) : rnd.int(0, SECTORS * 2)); break;
    case 1: setU32(s, e + 12, rnd.next() < 0.7 ? pick(rnd, INTERESTING_U32) : rnd.int(0, SECTORS * 2)); break;
    case 2: s[e + 4] = rnd.next() < 0.8 ? pick(rnd, TYPES) : rnd.int(0, 255); break;
    case 3: s[e] = pick(rnd, [0x00, 0x80, 0x01, 0xff]); break;
    case 4: s[rnd.int(0x1be, 511)] = rnd.int(0, 255); break;
    case 5: flipBit(rnd, s); break;
    default: s[510 + rnd.int(0, 1)] = rnd.int(0, 255); break;
  }
}

describe('fuzz: parsers on random bytes', () => {
  it('parseMbrSector never throws on 512 bytes; parseGptHeader/parseGptEntry throw only ImageError', () => {
    const rnd = prng(7);
    for (let i = 0; i < 3000; i++) {
      const buf = rnd.bytes(512);
      expect(parseMbrSector(buf).entries).toHaveLength(4);
      buf.set(new TextEncoder().encode('EFI PART'), 0);
      if (i % 2 === 0) buf.set([92, 0, 0, 0], 12);
      try {
        const h = parseGptHeader(buf, 512);
        expect(h.numberOfPartitionEntries * h.sizeOfPartitionEntry).toBeLessThanOrEqual(1024 * 1024);
      } catch (err) {
        expect(err).toBeInstanceOf(ImageError);
      }
      try {
        parseGptEntry(buf, rnd.int(0, 512 - 128));
      } catch (err) {
        expect(err).toBeInstanceOf(ImageError);
        expect((err as ImageError).code).toBe('E_TOO_LARGE');
      }
    }
  });
});

describe('fuzz: readPartitionTable on mutated real tables', () => {
  it('MBR disks made by sfdisk (primaries, extended + logicals), 4000 mutations', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const bases = [
      await seed('one', 'label: dos\nstart=2048, type=83, bootable\n'),
      await seed('legacy', 'label: dos\nstart=63, type=83\n'),
      await seed('four', 'label: dos\nsize=2MiB, type=c\nsize=2MiB, type=82\nsize=1MiB, type=7\ntype=8e\n'),
      await seed('ext', 'label: dos\nsize=1MiB, type=83\ntype=5\nsize=1MiB, type=83\nsize=1MiB, type=7\nsize=1MiB, type=b\ntype=82\n', 16 * MiB),
    ];
    const tally = newTally();
    const rnd = prng(2024);
    for (let i = 0; i < 4000; i++) {
      const base = pick(rnd, bases);
      const dev = base.clone(rnd.next() < 0.1 ? rnd.int(1, base.size / 512) * 512 - rnd.int(0, 1) * 100 : base.size);
      const tableSectors = [...dev.sectors.keys()];
      for (let m = rnd.int(1, 4); m > 0; m--) {
        const ebrs = tableSectors.filter((lba) => lba !== 0 && dev.sector(lba)[510] === 0x55);
        const ext = parseMbrSector(dev.sector(0)).entries.find((e) => e.type === 0x05);
        if (ext && ebrs.length > 0 && rnd.next() < 0.2) {
          // Relink an EBR to another (or itself): the loops and back-links a damaged chain has.
          setU32(dev.sector(pick(rnd, ebrs)), 0x1ce + 8, pick(rnd, ebrs) - ext.firstLba);
        } else {
          const lba = rnd.next() < 0.5 ? 0 : pick(rnd, tableSectors.length > 0 ? tableSectors : [0]);
          mutateTableSector(rnd, dev.sector(lba));
        }
      }
      await readOnce(dev, tally, i);
    }
    // The mutations must reach past the first checks, both to valid tables and to each kind of damage.
    expect(tally.ok).toBeGreaterThan(400);
    for (const code of ['E_OUT_OF_RANGE', 'E_OVERLAP', 'E_LOOP', 'E_BAD_MAGIC', 'E_CORRUPT']) expect(tally.codes.get(code) ?? 0).toBeGreaterThan(0);
    expect(tally.slowestMs).toBeLessThan(2000);
  });

  it('GPT disks made by sfdisk, 3000 mutations of headers and entries (CRCs usually fixed up)', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const base = await seed('gpt', 'label: gpt\nsize=1MiB, name="a"\nsize=2MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="b"\nname="c"\n');
    const tally = newTally();
    const rnd = prng(99);
    const headerFields = [8, 12, 24, 32, 40, 48, 72, 80, 84];
    for (let i = 0; i < 3000; i++) {
      const dev = base.clone(rnd.next() < 0.05 ? rnd.int(1, SECTORS) * 512 : SIZE);
      const headerLba = rnd.next() < 0.8 ? 1 : SECTORS - 1;
      for (let m = rnd.int(1, 3); m > 0; m--) {
        switch (rnd.int(0, 5)) {
          case 0: { // a header field
            const at = pick(rnd, headerFields);
            const h = dev.sector(headerLba);
            if (at >= 24 && at <= 72) {
              new DataView(h.buffer).setBigUint64(at, BigInt(rnd.next() < 0.7 ? pick(rnd, INTERESTING_U32) : rnd.int(0, SECTORS * 2)) *
                (rnd.next() < 0.05 ? 2n ** 40n : 1n), true);
            } else {
              setU32(h, at, rnd.next() < 0.5 ? pick(rnd, [0, 1, 92, 128, 256, 512, 4096, 0xffffffff]) : rnd.int(0, 1000));
            }
            break;
          }
          case 1: case 2: { // an entry's LBAs, type or name
            const slot = rnd.int(0, 4);
            const s = dev.sector(2 + Math.floor(slot / 4));
            const at = (slot % 4) * 128 + pick(rnd, [0, 16, 32, 40, 48, 56]);
            if (at % 128 === 32 || at % 128 === 40) {
              new DataView(s.buffer).setBigUint64(at, BigInt(rnd.next() < 0.8 ? pick(rnd, INTERESTING_U32) : rnd.int(0, SECTORS)), true);
            } else {
              s[at + rnd.int(0, 15)] = rnd.int(0, 255);
            }
            break;
          }
          case 3: mutateTableSector(rnd, dev.sector(0)); break;
          case 4: flipBit(rnd, dev.sector(rnd.next() < 0.5 ? 1 : SECTORS - 1)); break;
          default: dev.sectors.delete(pick(rnd, [1, 2, SECTORS - 1])); break;
        }
      }
      if (rnd.next() < 0.8) await fixGptCrcs(dev, headerLba);
      await readOnce(dev, tally, i);
    }
    expect(tally.ok).toBeGreaterThan(300);
    for (const code of ['E_OUT_OF_RANGE', 'E_OVERLAP', 'E_CORRUPT', 'E_BAD_CHECKSUM']) expect(tally.codes.get(code) ?? 0).toBeGreaterThan(0);
    expect(tally.slowestMs).toBeLessThan(2000);
  });
});

describe('fuzz: crafted EBR chains', () => {
  function entry(firstLba: number, sectorCount: number, type: number): PartitionEntry {
    const chs = { cylinder: 0, head: 0, sector: 1 };
    return { status: 0, firstChs: chs, type, lastChs: chs, firstLba, sectorCount };
  }

  it('3000 random chains (loops, overlaps, links out of the extended partition or past the disk) never hang or crash', async () => {
    const rnd = prng(4242);
    const tally = newTally();
    for (let i = 0; i < 3000; i++) {
      const extStart = rnd.int(1, 4000);
      const extSize = rnd.int(1, SECTORS - extStart);
      const dev = new SectorMapDevice(SIZE);
      dev.sectors.set(0, serializeMbrSector({ entries: [entry(extStart, extSize, pick(rnd, [0x05, 0x0f, 0x85]))] }));
      const n = rnd.int(1, 40);
      // EBR positions relative to the extended start, mostly inside it, some outside.
      const rel = Array.from({ length: n }, (_, k) => (k === 0 ? 0 : rnd.next() < 0.9 ? rnd.int(0, extSize - 1) : rnd.int(extSize, extSize + 100)));
      for (let k = 0; k < n; k++) {
        const lba = extStart + (rel[k] ?? 0);
        if (lba >= SECTORS) continue;
        const next = rnd.next() < 0.85 ? (k + 1 < n ? rel[k + 1] : undefined) : pick(rnd, rel);
        const logical = rnd.next() < 0.85
          ? entry(rnd.next() < 0.1 ? 0 : rnd.int(1, 64), rnd.next() < 0.9 ? rnd.int(1, 50) : rnd.int(1, extSize), rnd.next() < 0.95 ? 0x83 : pick(rnd, TYPES))
          : entry(0, 0, 0);
        const link = next === undefined ? entry(0, 0, 0) : entry(next, rnd.int(1, 100), rnd.next() < 0.95 ? 0x05 : pick(rnd, TYPES));
        const sector = serializeMbrSector({ entries: [logical, link] });
        if (rnd.next() < 0.03) sector[510] = 0;
        dev.sectors.set(lba, sector);
      }
      await readOnce(dev, tally, i);
    }
    expect(tally.ok).toBeGreaterThan(100);
    for (const code of ['E_LOOP', 'E_OVERLAP', 'E_OUT_OF_RANGE']) expect(tally.codes.get(code) ?? 0).toBeGreaterThan(0);
  });

  it('a random GPT array (arbitrary entries, valid CRCs) gives a valid table or a typed error', async () => {
    const rnd = prng(31337);
    const tally = newTally();
    for (let i = 0; i < 1500; i++) {
      const dev = new SectorMapDevice(SIZE);
      const entries = Array.from({ length: rnd.int(0, 8) }, () => {
        if (rnd.next() < 0.2) return undefined;
        const first = rnd.next() < 0.7 ? rnd.int(34, SECTORS - 34) : pick(rnd, INTERESTING_U32);
        return { first, last: first + rnd.int(-2, 3000), name: 'x'.repeat(rnd.int(0, 40)) };
      });
      const count = pick(rnd, [4, 16, 128]);
      writeGpt(dev, { entries: entries.slice(0, count), count, entrySize: pick(rnd, [128, 256]) });
      await readOnce(dev, tally, i);
    }
    expect(tally.ok).toBeGreaterThan(100);
    expect(tally.codes.get('E_OVERLAP') ?? 0).toBeGreaterThan(0);
  });
});
