import { spawn } from 'node:child_process';
import { trackChild } from '@amitrans/block';
import { createInflateRaw, crc32 } from 'node:zlib';
import { Decompress } from 'fzstd';
import { sevenZipPath } from '../sevenzip.js';
import { isZstdSkippable, LZ4_LEGACY_MAGIC, ZSTD_MAGIC } from './magic.js';
import { CHUNK, sourceChunks, type InitrdSource } from './source.js';

/**
 * One decoder per compression the kernel's initramfs unpacker knows. Each is an async
 * generator of decompressed chunks over the raw file from a start offset. When it finishes
 * it returns where the compressed data ended, if that is known, so the next segment can be
 * found; a damaged stream throws after yielding what it could. Returning early (the
 * caller stops iterating) releases everything: child processes are killed, zlib destroyed.
 */
export interface DecodeEnd {
  /** File offset just past the compressed data, when the format tells where it ends. */
  end?: number;
  /** Something wrong that did not stop decoding (a checksum mismatch). */
  note?: string;
}

export type Decoder = AsyncGenerator<Uint8Array, DecodeEnd, undefined>;

export class DecodeError extends Error {}

// ---------------------------------------------------------------- gzip (RFC 1952)

const FTEXT_RESERVED = 0xe0;
const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;

/** Length of the gzip member header at the start of `b`, or a reason it is not one. */
export function gzipHeaderLength(b: Uint8Array): number | string {
  if (b.length < 10) return 'gzip header is truncated';
  if (b[0] !== 0x1f || b[1] !== 0x8b) return 'no gzip magic';
  if (b[2] !== 8) return `gzip compression method ${b[2]} is not deflate`;
  const flags = b[3]!;
  if (flags & FTEXT_RESERVED) return 'gzip header has reserved flags set';
  let at = 10;
  if (flags & FEXTRA) {
    if (at + 2 > b.length) return 'gzip extra field is truncated';
    at += 2 + (b[at]! | (b[at + 1]! << 8));
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (flags & flag) {
      const nul = b.indexOf(0, at);
      if (nul === -1) return 'gzip name or comment is unterminated or too long';
      at = nul + 1;
    }
  }
  if (flags & FHCRC) at += 2;
  return at > b.length ? 'gzip header is truncated' : at;
}

export async function* gunzip(source: InitrdSource, offset: number): Decoder {
  const head = await source.read(offset, Math.min(64 * 1024, source.size - offset));
  const headerLength = gzipHeaderLength(head);
  if (typeof headerLength === 'string') throw new DecodeError(headerLength);
  const start = offset + headerLength;
  const inflate = createInflateRaw({ chunkSize: 256 * 1024 });
  let ended = false;
  let stopped = false;
  inflate.on('end', () => (ended = true));
  // Errors after the end (writes racing with zlib's close) mean nothing; before it, the
  // async iterator below sees them.
  inflate.on('error', () => undefined);
  const feeder = (async () => {
    for await (const chunk of sourceChunks(source, start)) {
      if (ended || stopped) return;
      if (!inflate.write(chunk)) await drainOrClose(inflate);
    }
    if (!ended && !stopped) inflate.end();
  })().catch((err: unknown) => inflate.destroy(err instanceof Error ? err : new Error(String(err))));
  let crc = 0;
  let size = 0;
  try {
    for await (const out of inflate) {
      const chunk = out as Buffer;
      crc = crc32(chunk, crc);
      size += chunk.length;
      yield chunk;
    }
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new DecodeError(msg === 'unexpected end of file' ? 'gzip data is truncated' : `gzip data is damaged: ${msg}`);
  } finally {
    stopped = true;
    inflate.destroy();
    await feeder;
  }
  const trailerAt = start + inflate.bytesWritten;
  const trailer = await source.read(trailerAt, Math.min(8, source.size - trailerAt));
  if (trailer.length < 8) return { end: trailerAt + trailer.length, note: 'gzip trailer is truncated' };
  const dv = new DataView(trailer.buffer, trailer.byteOffset, 8);
  let note: string | undefined;
  if (dv.getUint32(0, true) !== crc >>> 0) note = 'gzip CRC-32 does not match the data';
  else if (dv.getUint32(4, true) !== size % 2 ** 32) note = 'gzip ISIZE does not match the data';
  return { end: trailerAt + 8, note };
}

function drainOrClose(stream: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}

// ---------------------------------------------------------------- xz, lzma, bzip2 via 7-Zip

/**
 * Finds where a stream ends from the format's own structure, looking at the compressed
 * bytes as they go by (7-Zip reads a pipe, so it cannot say how much input it used).
 */
export interface EndScanner {
  /** The next chunk of compressed data: how many of its bytes belong to the stream, if it ends in this chunk. */
  push(chunk: Uint8Array): number | undefined;
}

/**
 * Pipe the file from `offset` through `7za x -si -so`, up to where `scanner` sees the end
 * of the stream (or to the end of the file). Resolves with the file offset of the end, if
 * the scanner found it.
 */
async function* sevenZip(
  source: InitrdSource,
  offset: number,
  type: 'xz' | 'lzma' | 'bzip2',
  scanner?: EndScanner,
): AsyncGenerator<Uint8Array, number | undefined> {
  // A missing binary is a decode failure of this segment, as any other.
  const bin = await sevenZipPath().catch((err: unknown) => {
    throw new DecodeError((err as Error).message);
  });
  const child = spawn(bin, ['x', '-si', '-so', `-t${type}`, '-bd', '-y'], { stdio: ['pipe', 'pipe', 'pipe'] });
  trackChild(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4096)));
  child.stdin.on('error', () => undefined); // EPIPE when 7-Zip stops reading early
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (err) => {
      stderr += err.message;
      resolve(-1);
    });
    child.on('close', (code) => resolve(code));
  });
  let stopped = false;
  let end: number | undefined;
  const feeder = (async () => {
    let at = offset;
    for await (let chunk of sourceChunks(source, offset)) {
      if (stopped || child.stdin.destroyed) return;
      const inStream = scanner?.push(chunk);
      if (inStream !== undefined) {
        chunk = chunk.subarray(0, inStream);
        end = at + inStream;
      }
      at += chunk.length;
      if (!child.stdin.write(chunk)) await drainOrClose(child.stdin);
      if (end !== undefined) break;
    }
    child.stdin.end();
  })().catch(() => child.stdin.destroy());
  let finished = false;
  try {
    for await (const out of child.stdout) yield out as Buffer;
    finished = true;
  } finally {
    stopped = true;
    if (!finished) child.kill('SIGKILL');
    child.stdin.destroy();
    await feeder;
    const code = await exited;
    if (finished && code !== 0) {
      throw new DecodeError(`${type} data is damaged or truncated (7-Zip exit ${code}: ${lastLines(stderr)})`);
    }
  }
  return end;
}

function lastLines(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('7-Zip') && !l.startsWith('p7zip'))
      .slice(-2)
      .join(' ') || 'no message'
  );
}

const XZ_HEADER = 12;
const XZ_FOOTER = 12;

/**
 * The end of an xz stream is its first stream footer ("YZ") whose CRC-32 checks out and
 * whose flags repeat the stream header's; the 11 bytes before each chunk are kept so a
 * footer split between chunks is still seen.
 */
export class XzEnd implements EndScanner {
  private tail: Buffer = Buffer.alloc(0);
  private readonly header: number[] = [];
  /** Bytes pushed before the current chunk. */
  private seen = 0;

  push(chunk: Uint8Array): number | undefined {
    const win = Buffer.concat([this.tail, chunk]);
    const winStart = this.seen - this.tail.length;
    for (let k = 0; this.header.length < XZ_HEADER && k < chunk.length; k++) this.header.push(chunk[k]!);
    this.seen += chunk.length;
    if (this.header.length === XZ_HEADER) {
      for (let i = win.indexOf('YZ', 0, 'latin1'); i !== -1; i = win.indexOf('YZ', i + 1, 'latin1')) {
        const f = i + 2 - XZ_FOOTER;
        // No footer can start inside the stream header.
        if (f < 0 || winStart + f < XZ_HEADER) continue;
        if (win[f + 8] !== this.header[6] || win[f + 9] !== this.header[7]) continue;
        if (crc32(win.subarray(f + 4, f + 10)) !== win.readUInt32LE(f)) continue;
        return i + 2 - this.tail.length;
      }
    }
    this.tail = Buffer.from(win.subarray(Math.max(0, win.length - (XZ_FOOTER - 1))));
    return undefined;
  }
}

export async function* unxz(source: InitrdSource, offset: number): Decoder {
  const end = yield* sevenZip(source, offset, 'xz', new XzEnd());
  return end === undefined ? { note: 'no xz stream footer found' } : { end };
}

/** Legacy .lzma ("LZMA alone") has no end marker the container can find: it runs to the file's end. */
export async function* unlzma(source: InitrdSource, offset: number): Decoder {
  yield* sevenZip(source, offset, 'lzma');
  return {};
}

const BZ_EOS = 0x177245385090n;
/** For each bit shift, the end-of-stream marker laid over 7 bytes and which bits of them it fixes. */
const BZ_PATTERNS = Array.from({ length: 8 }, (_, s) => {
  const value = BZ_EOS << BigInt(8 - s);
  const mask = ((1n << 48n) - 1n) << BigInt(8 - s);
  const bytes = (v: bigint): number[] => Array.from({ length: 7 }, (_, k) => Number((v >> BigInt(8 * (6 - k))) & 0xffn));
  return { shift: s, value: bytes(value), mask: bytes(mask) };
});

/**
 * The end of a bzip2 stream is just past its 48-bit end-of-stream marker (not byte
 * aligned), the 32-bit combined CRC and the padding to a byte. The marker is looked for
 * from byte 4 on (after "BZh" and the level); 16 bytes are kept between chunks.
 */
export class Bzip2End implements EndScanner {
  private tail: Buffer = Buffer.alloc(0);
  private skip = 4;

  push(chunk: Uint8Array): number | undefined {
    const win = Buffer.concat([this.tail, chunk]);
    const from = Math.min(this.skip, win.length);
    this.skip = Math.max(0, this.skip - chunk.length);
    let best: number | undefined;
    for (const p of BZ_PATTERNS) {
      // Byte 2 of the 7 is covered by the marker at every shift: find it natively first.
      for (let i = win.indexOf(p.value[2]!, from + 2); i !== -1 && i + 5 <= win.length; i = win.indexOf(p.value[2]!, i + 1)) {
        const at = i - 2;
        if (best !== undefined && at >= best) break;
        let ok = true;
        for (let k = 0; k < 7 && ok; k++) {
          if (p.mask[k] === 0) continue;
          const byte = at + k < win.length ? win[at + k]! : -1;
          if (byte === -1 || (byte & p.mask[k]!) !== p.value[k]) ok = false;
        }
        if (ok) {
          // The marker starts `shift` bits into byte `at`: 48 bits, the 32-bit CRC, then padding.
          const end = Math.ceil((8 * at + p.shift + 48 + 32) / 8);
          if (best === undefined || end < best) best = end;
          break;
        }
      }
    }
    if (best !== undefined && best <= win.length) return best - this.tail.length;
    this.tail = Buffer.from(win.subarray(Math.max(0, win.length - 16)));
    return undefined;
  }
}

export async function* bunzip2(source: InitrdSource, offset: number): Decoder {
  const end = yield* sevenZip(source, offset, 'bzip2', new Bzip2End());
  return end === undefined ? { note: 'no bzip2 end-of-stream marker found' } : { end };
}

// ---------------------------------------------------------------- zstd (RFC 8878)

const MAX_BLOCK = 128 * 1024;
/** fzstd keeps a window as large as the frame asks for: refuse absurd ones. */
export const ZSTD_MAX_WINDOW = 32 * 1024 * 1024;
/**
 * fzstd slides its window by copying it once per block, so a frame of many tiny blocks in
 * a large window is slow; bound the total bytes copied.
 */
const ZSTD_WORK_BUDGET = 2 ** 35;

function u32le(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/**
 * Decode back-to-back zstd frames (and skippable frames) as one stream, the way the
 * kernel's unzstd does. Block headers are walked here, so the end of the data is known
 * exactly and each block goes to fzstd on its own, which bounds the output of one step.
 */
export async function* unzstd(source: InitrdSource, offset: number): Decoder {
  let pos = offset;
  let work = 0;
  for (;;) {
    const head = await source.read(pos, Math.min(18, source.size - pos));
    if (head.length < 4) break;
    const magic = u32le(head, 0);
    if (isZstdSkippable(magic)) {
      if (head.length < 8) throw new DecodeError(`zstd skippable frame at byte ${pos} is truncated`);
      const next = pos + 8 + u32le(head, 4);
      if (next > source.size) throw new DecodeError(`zstd skippable frame at byte ${pos} is truncated`);
      pos = next;
      continue;
    }
    if (magic !== ZSTD_MAGIC) break;
    if (head.length < 6) throw new DecodeError(`zstd frame header at byte ${pos} is truncated`);
    const fhd = head[4]!;
    const singleSegment = (fhd >> 5) & 1;
    const hasChecksum = (fhd >> 2) & 1;
    const dictIdBytes = [0, 1, 2, 4][fhd & 3]!;
    const fcsBytes = [singleSegment, 2, 4, 8][fhd >> 6]!;
    if (fhd & 8) throw new DecodeError(`zstd frame header at byte ${pos} has the reserved bit set`);
    const headerLength = 4 + 1 + (singleSegment ? 0 : 1) + dictIdBytes + fcsBytes;
    if (head.length < headerLength) throw new DecodeError(`zstd frame header at byte ${pos} is truncated`);
    let window: number;
    if (singleSegment) {
      const at = 5 + dictIdBytes;
      window = 0;
      for (let i = fcsBytes - 1; i >= 0; i--) window = window * 256 + head[at + i]!;
      if (fcsBytes === 2) window += 256;
    } else {
      const wd = head[5]!;
      const base = 2 ** (10 + (wd >> 3));
      window = base + (base / 8) * (wd & 7);
    }
    if (window > ZSTD_MAX_WINDOW) {
      throw new DecodeError(`zstd frame at byte ${pos} needs a ${window}-byte window; at most ${ZSTD_MAX_WINDOW} is supported`);
    }
    const out: Uint8Array[] = [];
    const dec = new Decompress((data) => {
      if (data.length > 0) out.push(data);
    });
    const frameWindow = Math.max(window, 1);
    dec.push(head.subarray(0, headerLength), false);
    pos += headerLength;
    for (let last = false; !last; ) {
      const bh = await source.read(pos, Math.min(3, source.size - pos));
      if (bh.length < 3) throw new DecodeError(`zstd data is truncated at byte ${pos}`);
      const b = bh[0]! | (bh[1]! << 8) | (bh[2]! << 16);
      last = (b & 1) === 1;
      const type = (b >> 1) & 3;
      const blockSize = b >>> 3;
      if (type === 3) throw new DecodeError(`zstd block at byte ${pos} has the reserved type`);
      if (blockSize > MAX_BLOCK) throw new DecodeError(`zstd block at byte ${pos} is ${blockSize} bytes, over the 128 KiB limit`);
      const stored = type === 1 ? 1 : blockSize;
      if (pos + 3 + stored > source.size) throw new DecodeError(`zstd data is truncated at byte ${pos}`);
      work += frameWindow;
      if (work > ZSTD_WORK_BUDGET) throw new DecodeError(`zstd stream at byte ${offset} has too many blocks for its window`);
      const block = await source.read(pos, 3 + stored);
      pos += 3 + stored;
      try {
        dec.push(block, false);
      } catch (err) {
        throw new DecodeError(`zstd block before byte ${pos} is damaged: ${err instanceof Error ? err.message : String(err)}`);
      }
      while (out.length > 0) yield out.shift()!;
    }
    const checksum = await source.read(pos, hasChecksum ? 4 : 0);
    if (checksum.length < (hasChecksum ? 4 : 0)) throw new DecodeError(`zstd frame checksum at byte ${pos} is truncated`);
    pos += checksum.length;
    try {
      dec.push(checksum, true);
    } catch (err) {
      throw new DecodeError(`zstd frame ending at byte ${pos} is damaged: ${err instanceof Error ? err.message : String(err)}`);
    }
    while (out.length > 0) yield out.shift()!;
  }
  return { end: pos };
}

/** `n` bytes at `pos`, read in CHUNK pieces; shorter only at the end of the file. */
async function readExactly(source: InitrdSource, pos: number, n: number): Promise<Uint8Array> {
  if (n <= CHUNK) return source.read(pos, n);
  const parts: Uint8Array[] = [];
  for await (const chunk of sourceChunks(source, pos, Math.min(source.size, pos + n))) parts.push(chunk);
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------- lz4 legacy (lz4 -l)

const LZ4_LEGACY_BLOCK = 8 * 1024 * 1024;
const LZ4_MAX_COMPRESSED = LZ4_LEGACY_BLOCK + Math.floor(LZ4_LEGACY_BLOCK / 255) + 16;

/** Decode one LZ4 block into `dst`; resolves with the bytes written. */
export function lz4Block(src: Uint8Array, dst: Uint8Array): number {
  let s = 0;
  let d = 0;
  const bad = (what: string): never => {
    throw new DecodeError(`lz4 block is damaged: ${what}`);
  };
  while (s < src.length) {
    const token = src[s++]!;
    let lit = token >> 4;
    if (lit === 15) {
      for (let b = 255; b === 255; ) {
        if (s >= src.length) bad('literal length runs past the block');
        b = src[s++]!;
        lit += b;
      }
    }
    if (s + lit > src.length) bad('literals run past the block');
    if (d + lit > dst.length) bad('output is larger than 8 MiB');
    dst.set(src.subarray(s, s + lit), d);
    s += lit;
    d += lit;
    if (s >= src.length) break;
    if (s + 2 > src.length) bad('match offset runs past the block');
    const off = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (off === 0 || off > d) bad('match offset points before the output');
    let len = token & 15;
    if (len === 15) {
      for (let b = 255; b === 255; ) {
        if (s >= src.length) bad('match length runs past the block');
        b = src[s++]!;
        len += b;
      }
    }
    len += 4;
    if (d + len > dst.length) bad('output is larger than 8 MiB');
    if (off >= len) {
      dst.copyWithin(d, d - off, d - off + len);
      d += len;
    } else {
      for (let i = 0; i < len; i++, d++) dst[d] = dst[d - off]!;
    }
  }
  return d;
}

export async function* unlz4(source: InitrdSource, offset: number): Decoder {
  let pos = offset + 4;
  let blocks = 0;
  const dst = new Uint8Array(LZ4_LEGACY_BLOCK);
  for (;;) {
    const sizeBytes = await source.read(pos, Math.min(8, source.size - pos));
    if (sizeBytes.length < 4) break;
    const size = u32le(sizeBytes, 0);
    if (size === LZ4_LEGACY_MAGIC) {
      pos += 4;
      continue;
    }
    // The legacy format has no end marker. Like the kernel, stop at a size that cannot
    // be a block; and unlike it (the kernel wants lz4 last), also at a gzip member
    // appended after this one (the only segment magic that reads as a plausible block
    // size), or at a block that does not decode once one did (what follows is then
    // reported as unrecognised data).
    if (size === 0 || size > LZ4_MAX_COMPRESSED || (sizeBytes[0] === 0x1f && sizeBytes[1] === 0x8b && sizeBytes[2] === 8)) break;
    if (pos + 4 + size > source.size) {
      if (blocks > 0) break;
      throw new DecodeError(`lz4 block at byte ${pos} is truncated`);
    }
    const block = await readExactly(source, pos + 4, size);
    let n: number;
    try {
      n = lz4Block(block, dst);
    } catch (err) {
      if (blocks > 0) break;
      throw err;
    }
    pos += 4 + size;
    blocks++;
    yield dst.slice(0, n);
  }
  return { end: pos };
}
