import { once } from 'node:events';
import { createGzip, type Gzip } from 'node:zlib';
import { ImageError } from '@amitrans/block';
import { DEFAULT_INITRD_LIMITS, normaliseMemberName, type InitrdCompression, type InitrdContents } from './contents.js';
import { cpioMagic, parseCpioHeader, TRAILER, MAX_NAME } from './cpio.js';
import { writeNewcArchive, type NewcMember } from './cpiowriter.js';
import { KERNEL_OPTION } from './encoders.js';
import type { Decoder } from './decoders.js';
import { DECODERS } from './reader.js';
import { ChunkStream, CHUNK, SourceStream, sourceChunks, type ByteStream, type InitrdSource } from './source.js';

/** Compressions the main archive is rewritten in. */
export type RewriteCompression = 'none' | 'gzip';

export interface RewriteOptions {
  compression: RewriteCompression;
  /** Largest initrd to produce (bytes); more is an error, so memory stays bounded. */
  maxOutput: number;
  /** Largest decompressed archive to read (default: the reader's 1 GiB). */
  maxDecompressed?: number;
}

export interface RewriteResult {
  bytes: Uint8Array;
  compression: RewriteCompression;
  /** Bytes before the rewritten archive (early microcode cpio and other segments), kept as they were. */
  kept: number;
  /** Members of the original archive copied over. */
  copied: number;
  /** Members of the original archive left out because a new member replaces them. */
  replaced: number;
}

export class InitrdRewriteError extends ImageError {}

const NEWC_HEADER = 110;

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/**
 * The compression to rewrite the main archive in: the original's where we have a writer
 * (none, gzip), else gzip when the kernel unpacks it (`config` undefined: not known, so
 * assumed). Undefined: no writer the kernel reads.
 */
export function chooseRewriteCompression(last: InitrdCompression, config: ReadonlyMap<string, string> | undefined): RewriteCompression | undefined {
  if (last === 'none') return 'none';
  if (config === undefined || config.get(KERNEL_OPTION.gzip!) === 'y') return 'gzip';
  return undefined;
}

/** Where output goes: straight into a list, or through gzip; bounded either way. */
class Output {
  private readonly chunks: Uint8Array[] = [];
  private total = 0;
  private readonly gzip: Gzip | undefined;

  constructor(
    compression: RewriteCompression,
    private readonly max: number,
    private readonly where: string,
  ) {
    if (compression === 'gzip') {
      this.gzip = createGzip({ level: 9 });
      this.gzip.on('data', (c: Buffer) => this.keep(c));
    }
  }

  keep(c: Uint8Array): void {
    this.total += c.length;
    // An error from a 'data' handler would be lost: remember it and throw on the next write.
    if (this.total > this.max) this.over ??= new InitrdRewriteError('E_UNSUPPORTED', `${this.where}: the rewritten initrd would be larger than ${this.max} bytes`, { structure: 'initrd' });
    else this.chunks.push(c);
  }

  over: InitrdRewriteError | undefined;

  /** Bytes that go in front as they are (never compressed again). */
  raw(c: Uint8Array): void {
    this.keep(c);
    if (this.over) throw this.over;
  }

  async write(c: Uint8Array): Promise<void> {
    if (this.over) throw this.over;
    if (!this.gzip) return this.keep(Uint8Array.from(c));
    if (!this.gzip.write(c)) await once(this.gzip, 'drain');
  }

  async finish(): Promise<Uint8Array> {
    if (this.gzip) {
      const ended = once(this.gzip, 'end');
      this.gzip.end();
      await ended;
    }
    if (this.over) throw this.over;
    return Buffer.concat(this.chunks, this.total);
  }

  destroy(): void {
    this.gzip?.destroy();
  }
}

/**
 * The initrd with the new members inside its main (last) archive instead of in a segment
 * of their own, so tools that list only the first archive of the compressed part
 * (lsinitramfs, unmkinitramfs, cpio -t) see them: everything before the last segment
 * (the early microcode cpio) is kept byte for byte, the last segment is decompressed,
 * its members are copied as they were except those a new member replaces, the new members
 * and one trailer follow, and the archive is compressed again. Streams: the decompressed
 * archive is never held whole; the output is bounded by `maxOutput`.
 */
export async function rewriteInitrd(source: InitrdSource, contents: InitrdContents, members: readonly NewcMember[], o: RewriteOptions): Promise<RewriteResult> {
  const last = contents.segments[contents.segments.length - 1];
  const where = `initrd segment ${contents.segments.length - 1}`;
  if (!last || (last.archive !== 'newc' && last.archive !== 'crc')) {
    throw new InitrdRewriteError('E_UNSUPPORTED', `${where} is ${last ? `a ${last.archive} archive` : 'missing'}; only newc archives are rewritten`, { structure: 'initrd' });
  }
  const out = new Output(o.compression, o.maxOutput, where);
  let decoder: Decoder | undefined;
  try {
    for await (const c of sourceChunks(source, 0, last.offset)) out.raw(Uint8Array.from(c));
    const limit = o.maxDecompressed ?? DEFAULT_INITRD_LIMITS.maxDecompressedBytes;
    decoder = last.compression === 'none' ? undefined : DECODERS[last.compression](source, last.offset);
    const stream: ByteStream = decoder ? new ChunkStream(decoder, { remaining: limit }) : new SourceStream(source, last.offset);
    const replacing = new Set(members.map((m) => normaliseMemberName(m.path).path));
    const { copied, replaced, paths } = await copyMembers(stream, replacing, out, where);
    if (stream instanceof ChunkStream && (stream.capped || stream.error !== undefined)) {
      throw new InitrdRewriteError('E_CORRUPT', `${where}: ${stream.error ?? `more than ${limit} decompressed bytes`}`, { structure: 'initrd' });
    }
    await out.write(writeNewcArchive(members, { present: paths, firstIno: 0x7f000000 }));
    return { bytes: await out.finish(), compression: o.compression, kept: last.offset, copied, replaced };
  } finally {
    out.destroy();
    // Stopping early (an error) ends the decoder: its child process is killed, zlib freed.
    await decoder?.return({}).catch(() => undefined);
  }
}

/**
 * Copy the members of every archive in `stream` (a segment may hold several back to back)
 * to `out`, leaving out trailers and the paths in `replacing`. Resolves with the counts and
 * the paths (absolute) that were copied.
 */
async function copyMembers(stream: ByteStream, replacing: ReadonlySet<string>, out: Output, where: string): Promise<{ copied: number; replaced: number; paths: Set<string> }> {
  const paths = new Set<string>();
  let copied = 0;
  let replaced = 0;
  for (;;) {
    await stream.skipZeros();
    if ((await stream.peek()) === -1) return { copied, replaced, paths };
    const at = stream.position;
    const head = await stream.read(NEWC_HEADER);
    const format = cpioMagic(head);
    const fail = (why: string): never => {
      throw new InitrdRewriteError('E_CORRUPT', `${where}, decompressed byte ${at}: ${why}`, { structure: 'cpio', offset: at });
    };
    if (head.length < NEWC_HEADER || (format !== 'newc' && format !== 'crc')) fail('not a newc cpio header');
    const h = parseCpioHeader(format!, head);
    if (typeof h === 'string') return fail(h);
    if (h.nameSize < 1 || h.nameSize > MAX_NAME + 1) fail(`a name of ${h.nameSize} bytes`);
    const nameField = await stream.read(h.nameSize + pad4(NEWC_HEADER + h.nameSize));
    if (nameField.length < h.nameSize + pad4(NEWC_HEADER + h.nameSize)) fail('the name is truncated');
    const raw = nameField.subarray(0, h.nameSize);
    const name = Buffer.from(raw.subarray(0, raw.indexOf(0) === -1 ? raw.length : raw.indexOf(0))).toString('utf8');
    const path = normaliseMemberName(name).path;
    const dataLength = h.fileSize + pad4(h.fileSize);
    // A member with hard links may carry the data of the others: keep it; the new one still comes later.
    const drop = name === TRAILER || (replacing.has(path) && h.nlink < 2);
    if (drop) {
      if ((await stream.skip(dataLength)) < dataLength) fail(`the data of ${JSON.stringify(name)} is truncated`);
      if (name !== TRAILER) replaced++;
      continue;
    }
    await out.write(head);
    await out.write(nameField);
    for (let left = dataLength; left > 0; ) {
      const chunk = await stream.read(Math.min(CHUNK, left));
      if (chunk.length === 0) fail(`the data of ${JSON.stringify(name)} is truncated`);
      await out.write(chunk);
      left -= chunk.length;
    }
    paths.add(path);
    copied++;
  }
}
