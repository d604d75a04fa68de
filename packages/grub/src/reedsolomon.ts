/**
 * Reed-Solomon parity as grub-bios-setup writes it (grub-core/lib/reed_solomon.c, facts in
 * ../shared/specs/grub2.md §2): GF(2^8) with x^8+x^4+x^3+x^2+1, α = 2, generator
 * ∏(x − α^k) for k < r, codewords interleaved over 512 columns, at most 200 sectors a block.
 */
const SECTOR = 512;
const MAX_BLOCK = 200 * SECTOR;

const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    EXP[i + 255] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
}

function mul(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a]! + LOG[b]!]!;
}

/** g(x) = ∏_{k<r} (x − α^k), leading coefficient first. */
const generators = new Map<number, Uint8Array>();
function generator(r: number): Uint8Array {
  let g = generators.get(r);
  if (g) return g;
  g = new Uint8Array(r + 1);
  g[0] = 1;
  for (let k = 0; k < r; k++) {
    // Multiply the degree-k polynomial in g[0..k] by (x + α^k).
    const a = EXP[k]!;
    for (let i = k + 1; i >= 1; i--) g[i] = g[i]! ^ mul(g[i - 1]!, a);
  }
  generators.set(r, g);
  return g;
}

/** Systematic parity: the remainder of data(x)·x^r by g(x), data byte 0 the highest power. */
function encodeCodeword(data: Uint8Array, r: number): Uint8Array {
  const g = generator(r);
  const rem = new Uint8Array(r);
  for (const d of data) {
    const f = d ^ rem[0]!;
    rem.copyWithin(0, 1);
    rem[r - 1] = 0;
    if (f) for (let i = 0; i < r; i++) rem[i] = rem[i]! ^ mul(g[i + 1]!, f);
  }
  return rem;
}

/** One block: column i is bytes i, i+512, ... of the data and of the parity. */
function encodeBlock(buf: Uint8Array, data: number, s: number, parity: number, rs: number): void {
  for (let i = 0; i < SECTOR; i++) {
    const ds = Math.floor((s + SECTOR - 1 - i) / SECTOR);
    const rr = Math.floor((rs + SECTOR - 1 - i) / SECTOR);
    if (ds === 0 || rr === 0) continue;
    const column = new Uint8Array(ds);
    for (let j = 0; j < ds; j++) column[j] = buf[data + SECTOR * j + i]!;
    const p = encodeCodeword(column, rr);
    for (let j = 0; j < rr; j++) buf[parity + SECTOR * j + i] = p[j]!;
  }
}

/**
 * Write `redundancy` parity bytes right after `size` data bytes at `start` in `buf`
 * (grub_reed_solomon_add_redundancy).
 */
export function addRedundancy(buf: Uint8Array, start: number, size: number, redundancy: number): void {
  let s = size;
  let rs = redundancy;
  let data = start;
  let parity = start + size;
  while (s > 0 && rs > 0) {
    let cs = s;
    let crs = rs;
    if (cs + crs > MAX_BLOCK) {
      cs = Math.floor((s * (MAX_BLOCK / SECTOR)) / (s + rs)) * SECTOR;
      crs = Math.floor((rs * (MAX_BLOCK / SECTOR)) / (s + rs)) * SECTOR;
      // Only when the parity dwarfs the data (never for a core.img): stop rather than spin.
      if (cs === 0 || crs === 0) break;
    }
    encodeBlock(buf, data, cs, parity, crs);
    data += cs;
    parity += crs;
    s -= cs;
    rs -= crs;
  }
}
