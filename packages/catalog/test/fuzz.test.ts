import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng, tmpDir, writeListing, type TmpDir } from '@amitrans/testkit';
import { catalog } from '../src/index.js';

// Mutated listings, text and JSON, fed in chunks of random sizes: catalog gives a summary
// and warnings for every one, never an exception, and counts no more images than there
// are image ids in the input.
let dir: TmpDir;
const listings: Record<'text' | 'json', Buffer> = { text: Buffer.alloc(0), json: Buffer.alloc(0) };

beforeAll(async () => {
  dir = await tmpDir();
  for (const form of ['text', 'json'] as const) {
    const file = dir.file(`small.${form}`);
    await writeListing(file, { form, total: 60, counts: { 'aki-825ea7eb': 20, 'aki-4c7d9525': 5 }, mention: 'aki-825ea7eb' });
    listings[form] = await readFile(file);
  }
});
afterAll(async () => {
  await dir.remove();
});

type Rng = ReturnType<typeof prng>;

const SPICE = ['\n', '\t', '"', '{', '}', '[', ']', '\\', ',', ':', 'IMAGE\t', '{"Images": [', '\u0000', '\r\n', 'ami-00000000', 'aki-825ea7eb', '\u00e9\u4e2d'];

function mutate(input: Buffer, r: Rng): Buffer {
  let b = Buffer.from(input);
  const edits = r.int(1, 8);
  for (let e = 0; e < edits; e++) {
    const at = r.int(0, Math.max(0, b.length - 1));
    switch (r.int(0, 4)) {
      case 0: // flip a byte
        if (b.length) b[at] = r.int(0, 255);
        break;
      case 1: // truncate
        b = b.subarray(0, at);
        break;
      case 2: // insert structure
        b = Buffer.concat([b.subarray(0, at), Buffer.from(SPICE[r.int(0, SPICE.length - 1)]!), b.subarray(at)]);
        break;
      case 3: // delete a run
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + r.int(1, 200)))]);
        break;
      default: // random bytes
        b = Buffer.concat([b.subarray(0, at), Buffer.from(r.bytes(r.int(1, 64))), b.subarray(at)]);
    }
  }
  return b;
}

function chunks(b: Buffer, r: Rng): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < b.length;) {
    const n = r.int(1, 4096);
    out.push(b.subarray(p, p + n));
    p += n;
  }
  return out;
}

describe('fuzz: mutated listings give a summary and warnings, never an exception', () => {
  for (const form of ['text', 'json'] as const) {
    it(`${form}: 400 mutations`, async () => {
      const r = prng(form === 'text' ? 17 : 18);
      let warned = 0;
      for (let n = 0; n < 400; n++) {
        const input = mutate(listings[form], r);
        const ids = (input.toString('latin1').match(/[ae][mkr]i-[0-9a-f]{8}/g) ?? []).length;
        const s = await catalog(['-'], { stdin: Readable.from(chunks(input, r)), onWarning: () => warned++ });
        expect(s.total).toBeLessThanOrEqual(ids);
        expect(s.matched).toBe(s.total);
      }
      // The mutations did reach the error paths.
      expect(warned).toBeGreaterThan(100);
    });
  }
});
