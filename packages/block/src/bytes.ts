import { ImageError } from './errors.js';

/**
 * Little helpers for fixed-layout structures. 64-bit fields become JS numbers only when
 * they fit in 2^53; a larger value read off disk is an E_TOO_LARGE error, never a
 * silently rounded size.
 */
export function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

export function u64le(buf: Uint8Array, at: number, structure: string, field: string): number {
  return safe(view(buf).getBigUint64(at, true), structure, field, at);
}

export function u64be(buf: Uint8Array, at: number, structure: string, field: string): number {
  return safe(view(buf).getBigUint64(at, false), structure, field, at);
}

function safe(v: bigint, structure: string, field: string, at: number): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ImageError('E_TOO_LARGE', `${field} ${v} is beyond 2^53`, { structure, offset: at });
  }
  return Number(v);
}

export function setU64le(buf: Uint8Array, at: number, value: number): void {
  view(buf).setBigUint64(at, BigInt(value), true);
}

export function setU64be(buf: Uint8Array, at: number, value: number): void {
  view(buf).setBigUint64(at, BigInt(value), false);
}

/** ASCII text of a fixed field, cut at the first NUL. */
export function asciiz(buf: Uint8Array, at: number, length: number): string {
  const end = buf.subarray(at, at + length);
  const nul = end.indexOf(0);
  return Buffer.from(nul < 0 ? end : end.subarray(0, nul)).toString('latin1');
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

const ZERO_BLOCK = Buffer.alloc(64 * 1024);

/** True when every byte of `buf` is zero (memcmp against a shared zero block, no copies). */
export function isZero(buf: Uint8Array): boolean {
  return isZeroAt(buf, 0, buf.length);
}

/** True when bytes [start, end) of `buf` are all zero. */
export function isZeroAt(buf: Uint8Array, start: number, end: number): boolean {
  for (let at = start; at < end; at += ZERO_BLOCK.length) {
    const n = Math.min(end - at, ZERO_BLOCK.length);
    if (ZERO_BLOCK.compare(buf, at, at + n, 0, n) !== 0) return false;
  }
  return true;
}

/**
 * Split `buf` into maximal runs of all-zero and not-all-zero blocks of `granularity`
 * bytes (aligned to the start of `buf`; the last block may be short), in order.
 */
export function* zeroRuns(buf: Uint8Array, granularity: number): Iterable<{ start: number; end: number; zero: boolean }> {
  const n = buf.length;
  if (n === 0) return;
  if (isZeroAt(buf, 0, n)) {
    yield { start: 0, end: n, zero: true };
    return;
  }
  let start = 0;
  let zero = isZeroAt(buf, 0, Math.min(n, granularity));
  for (let p = granularity; p < n; p += granularity) {
    const z = isZeroAt(buf, p, Math.min(n, p + granularity));
    if (z !== zero) {
      yield { start, end: p, zero };
      start = p;
      zero = z;
    }
  }
  yield { start, end: n, zero };
}

const wasm = (globalThis as { WebAssembly?: { Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly;

/**
 * A zeroed buffer whose first byte is on a page boundary, for large I/O buffers. An
 * ArrayBuffer usually starts 16 bytes past a page boundary, and the kernel's copy between
 * a page-cache page and such a buffer runs four to five times slower on some CPUs (the
 * loads alias the stores just made, 4 KiB apart): 0.8 s instead of 0.2 s per 2 GiB read.
 * WebAssembly memory always starts on a page; plain memory is the fallback.
 */
export function alignedBytes(size: number): Uint8Array {
  if (size >= 64 * 1024 && wasm) {
    try {
      return new Uint8Array(new wasm.Memory({ initial: Math.ceil(size / 65536) }).buffer, 0, size);
    } catch {
      // No WebAssembly, or no room for another memory: unaligned is only slower.
    }
  }
  return new Uint8Array(size);
}
