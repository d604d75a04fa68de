import { describe, expect, it } from 'vitest';
import { prng } from '@amitrans/testkit';
import { CHS_SENTINEL, chsFromLba, isChsSentinel, lbaFromChs, parseChs, serializeChs, type Chs } from '../src/index.js';
import { parseGuid, serializeGuid } from '../src/guid.js';

const bytes = (chs: Chs): string => {
  const b = new Uint8Array(3);
  serializeChs(chs, b, 0);
  return Buffer.from(b).toString('hex');
};

describe('CHS', () => {
  it('encodes the addresses sfdisk writes for a 64 MiB disk (start 2048, end 131071)', () => {
    expect(chsFromLba(2048)).toEqual({ cylinder: 0, head: 32, sector: 33 });
    expect(bytes(chsFromLba(2048))).toBe('202100');
    expect(chsFromLba(131071)).toEqual({ cylinder: 8, head: 40, sector: 32 });
    expect(bytes(chsFromLba(131071))).toBe('282008');
    expect(chsFromLba(63)).toEqual({ cylinder: 0, head: 1, sector: 1 });
    expect(chsFromLba(0)).toEqual({ cylinder: 0, head: 0, sector: 1 });
  });

  it('puts cylinder bits 8-9 in the top of the sector byte', () => {
    const chs = { cylinder: 0x3a5, head: 17, sector: 42 };
    expect(bytes(chs)).toBe(`11${(42 | 0xc0).toString(16)}a5`);
    const b = new Uint8Array(3);
    serializeChs(chs, b, 0);
    expect(parseChs(b, 0)).toEqual(chs);
  });

  it('the last addressable sector is 1023/254/63; one past it is the FE FF FF sentinel', () => {
    const last = 1024 * 255 * 63 - 1;
    expect(chsFromLba(last)).toEqual({ cylinder: 1023, head: 254, sector: 63 });
    expect(chsFromLba(last + 1)).toBe(CHS_SENTINEL);
    expect(chsFromLba(2 ** 32 - 1)).toBe(CHS_SENTINEL);
    expect(bytes(CHS_SENTINEL)).toBe('feffff');
    expect(parseChs(Uint8Array.from([0xfe, 0xff, 0xff]), 0)).toEqual(CHS_SENTINEL);
    expect(isChsSentinel(parseChs(Uint8Array.from([0xfe, 0xff, 0xff]), 0))).toBe(true);
  });

  it('round trips LBA -> CHS -> bytes -> CHS -> LBA below the limit, for several geometries', () => {
    const rnd = prng(1);
    for (const geometry of [{ heads: 255, sectorsPerTrack: 63 }, { heads: 16, sectorsPerTrack: 63 }, { heads: 64, sectorsPerTrack: 32 }]) {
      const limit = 1024 * geometry.heads * geometry.sectorsPerTrack;
      for (let i = 0; i < 2000; i++) {
        const lba = i < 3 ? [0, limit - 1, geometry.sectorsPerTrack][i] ?? 0 : rnd.int(0, limit - 1);
        const b = new Uint8Array(3);
        serializeChs(chsFromLba(lba, geometry), b, 0);
        expect(lbaFromChs(parseChs(b, 0), geometry)).toBe(lba);
      }
    }
  });

  it('rejects impossible addresses and geometries', () => {
    expect(lbaFromChs({ cylinder: 0, head: 0, sector: 0 })).toBeUndefined();
    expect(lbaFromChs({ cylinder: 0, head: 255, sector: 1 })).toBeUndefined();
    expect(() => chsFromLba(0, { heads: 0, sectorsPerTrack: 63 })).toThrow(/geometry/);
    expect(() => chsFromLba(0, { heads: 255, sectorsPerTrack: 64 })).toThrow(/geometry/);
  });
});

describe('GUID', () => {
  it('stores the first three fields little-endian', () => {
    const b = new Uint8Array(16);
    serializeGuid('0FC63DAF-8483-4772-8E79-3D69D8477DE4', b, 0);
    expect(Buffer.from(b).toString('hex')).toBe('af3dc60f838472478e793d69d8477de4');
    expect(parseGuid(b, 0)).toBe('0FC63DAF-8483-4772-8E79-3D69D8477DE4');
    serializeGuid('c12a7328-f81f-11d2-ba4b-00a0c93ec93b', b, 0);
    expect(parseGuid(b, 0)).toBe('C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
    expect(() => serializeGuid('not-a-guid', b, 0)).toThrow(/GUID/);
  });
});
