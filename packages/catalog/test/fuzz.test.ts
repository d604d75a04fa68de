import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng, tmpDir, writeListing, type TmpDir } from '@amitrans/testkit';
import { chunked } from './helpers.js';
import { readListing, type ImageRecord, type ListingWarning } from '../src/index.js';

let dir: TmpDir;
const seeds: Record<string, Buffer> = {};
beforeAll(async () => {
  dir = await tmpDir();
  for (const form of ['text', 'json', 'jsonl'] as const) {
    const file = join(dir.path, form);
    await writeListing(file, { form, images: 120, pageSize: 40, akiCounts: { 'aki-825ea7eb': 30, 'aki-4c7d9525': 10 } });
    seeds[form] = await readFile(file);
  }
});
afterAll(async () => {
  await dir.remove();
});

/** Flip, drop, duplicate and insert bytes (tabs, newlines, quotes, braces, NULs, 0xff). */
function mutate(data: Buffer, r: ReturnType<typeof prng>): Buffer {
  const out = Buffer.from(data);
  const special = [0x09, 0x0a, 0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x5c, 0x00, 0xff, 0x2c, 0x3a];
  let bytes = [...out];
  for (let n = r.int(1, 40); n > 0; n--) {
    const at = r.int(0, bytes.length - 1);
    const what = r.int(0, 3);
    if (what === 0) bytes[at] = r.next() < 0.5 ? special[r.int(0, special.length - 1)]! : r.int(0, 255);
    else if (what === 1) bytes.splice(at, r.int(1, 50));
    else if (what === 2) bytes.splice(at, 0, ...bytes.slice(at, at + r.int(1, 200)));
    else bytes.splice(at, 0, special[r.int(0, special.length - 1)]!);
  }
  if (r.next() < 0.1) bytes = bytes.slice(0, r.int(0, bytes.length));
  return Buffer.from(bytes);
}

describe('fuzz: mutated listings give records and warnings, never an exception or a hang', () => {
  for (const form of ['text', 'json', 'jsonl']) {
    it(form, async () => {
      const r = prng(form.length * 7919);
      for (let round = 0; round < 100; round++) {
        const data = mutate(seeds[form]!, r);
        const records: ImageRecord[] = [];
        const warnings: ListingWarning[] = [];
        await readListing(chunked(data, r.int(1, 5000)), 'f', (rec) => records.push(rec), (w) => warnings.push(w));
        const lines = data.toString('latin1').split('\n').length;
        for (const w of warnings) {
          expect(w.line).toBeGreaterThanOrEqual(1);
          expect(w.line).toBeLessThanOrEqual(lines);
          expect(w.message.length).toBeGreaterThan(0);
        }
        for (const rec of records) {
          // Every field reads as a string (lazy records decode on demand).
          for (const key of ['id', 'location', 'kernelId', 'rootDeviceType', 'snapshotId'] as const) expect(typeof rec[key]).toBe('string');
          expect(typeof rec.tags).toBe('object');
        }
        expect(records.length + warnings.length).toBeGreaterThan(0);
      }
    });
  }
});
