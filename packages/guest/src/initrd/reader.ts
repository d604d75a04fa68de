import { ImageError } from '@amitrans/block';
import { Collector, DEFAULT_INITRD_LIMITS, type InitrdContents, type InitrdLimits } from './contents.js';
import { cpioMagic, walkCpioArchive } from './cpio.js';
import { sniffSegment, type Compressed } from './magic.js';
import { bunzip2, gunzip, unlz4, unlzma, unxz, unzstd, type DecodeEnd, type Decoder } from './decoders.js';
import { ChunkStream, SourceStream, sourceFromBytes, type ByteStream, type InitrdSource } from './source.js';


export const DECODERS: Record<Compressed, (source: InitrdSource, offset: number) => Decoder> = {
  gzip: gunzip,
  xz: unxz,
  lzma: unlzma,
  bzip2: bunzip2,
  zstd: unzstd,
  lz4: unlz4,
};

export type ReadInitrdOptions = Partial<InitrdLimits>;

/**
 * List an initrd / initramfs: its segments (an uncompressed early-microcode cpio in front,
 * compressed archives back to back, zero padding between), every member with type and
 * size, kernel modules and versions, the init flavour and the module lists it carries.
 * Nothing is written anywhere and file data is skipped, except small text files.
 *
 * Damage gives partial contents and `warnings`; an ImageError only when nothing at all
 * could be read.
 */
export async function readInitrd(input: InitrdSource | Uint8Array, options: ReadInitrdOptions = {}): Promise<InitrdContents> {
  const source = input instanceof Uint8Array ? sourceFromBytes(input) : input;
  const limits: InitrdLimits = { ...DEFAULT_INITRD_LIMITS, ...options };
  const c = new Collector(limits);
  const budget = { remaining: limits.maxDecompressedBytes };
  let sawArchive = false;
  let pos = 0;
  while (pos < source.size && !c.stopped) {
    // Zero padding between segments is skipped, as the kernel does.
    const scan = new SourceStream(source, pos);
    await scan.skipZeros();
    if (scan.offset >= source.size) break;
    pos = scan.offset;
    const head = await source.read(pos, Math.min(2048, source.size - pos));
    const what = sniffSegment(head);
    if (what.kind === 'cpio') {
      c.addSegment({ offset: pos, compression: 'none', archive: 'unknown', decompressedBytes: 0, entries: 0 });
      const stream = new SourceStream(source, pos);
      const end = await walkCpioArchive(stream, c, `cpio archive at byte ${pos}`);
      c.segment.length = stream.position;
      c.segment.decompressedBytes = stream.position;
      sawArchive ||= end === 'trailer';
      if (end !== 'trailer') {
        c.incomplete = true;
        break;
      }
      pos = stream.offset;
      continue;
    }
    if (what.kind === 'compressed') {
      const next = await readCompressed(source, pos, what.compression, c, budget);
      sawArchive ||= next.sawArchive;
      if (next.end === undefined) break;
      pos = next.end;
      continue;
    }
    if (pos === 1024 && isExt2Superblock(head)) {
      c.addSegment({ offset: 0, compression: 'none', archive: 'ext2', decompressedBytes: 0, entries: 0 });
      c.warn('the initrd is an ext2 filesystem image (an old-style initrd), not a cpio archive; its files are not listed');
      sawArchive = true;
      break;
    }
    c.incomplete = true;
    const found = what.kind === 'unsupported' ? `${what.name} data, which this reader does not decompress` : `unrecognised data (${hex(head)})`;
    if (c.segments.length === 0) {
      throw new ImageError(what.kind === 'unsupported' ? 'E_UNSUPPORTED' : 'E_UNKNOWN_FORMAT', `not an initrd: ${found}`, { structure: 'initrd', offset: pos });
    }
    c.warn(`${found} at byte ${pos} after the last archive; ignored`);
    break;
  }
  if (!sawArchive && c.entries.length === 0) {
    const why = c.warnings.length > 0 ? c.warnings.slice(0, 3).join('; ') : source.size === 0 ? 'the file is empty' : 'the file holds only zeros';
    throw new ImageError(source.size === 0 ? 'E_TRUNCATED' : 'E_CORRUPT', `no cpio archive could be read: ${why}`, { structure: 'initrd', offset: 0 });
  }
  return c.finish(source.size);
}

/**
 * Decompress one segment and walk the cpio archives in it. Resolves with the file offset
 * after the compressed data when known; undefined when reading must stop here.
 */
async function readCompressed(
  source: InitrdSource,
  offset: number,
  compression: Compressed,
  c: Collector,
  budget: { remaining: number },
): Promise<{ end?: number; sawArchive: boolean }> {
  const index = c.addSegment({ offset, compression, archive: 'unknown', decompressedBytes: 0, entries: 0 });
  const where = `segment ${index} (${compression} at byte ${offset})`;
  const decoder = DECODERS[compression](source, offset);
  let result: DecodeEnd | undefined;
  const chunks: AsyncIterator<Uint8Array, unknown> = {
    next: async () => {
      const r = await decoder.next();
      if (r.done === true) result = r.value;
      return r;
    },
  };
  const stream = new ChunkStream(chunks, budget);
  let sawArchive = false;
  let clean = true;
  try {
    for (;;) {
      await stream.skipZeros();
      if ((await stream.peek()) === -1) break;
      const head = await stream.read(6);
      if (cpioMagic(head) === undefined) {
        const more = await stream.read(58);
        const all = Buffer.concat([head, more]);
        if (stream.position - all.length === 1024 && all[56] === 0x53 && all[57] === 0xef) {
          c.segment.archive = 'ext2';
          c.warn(`${where} holds an ext2 filesystem image (an old-style initrd), not a cpio archive; its files are not listed`);
          sawArchive = true;
          clean = false;
          break;
        }
        c.warn(`${where}: data that is not a cpio archive at decompressed byte ${stream.position - all.length} (${hex(all)})`);
        clean = false;
        await stream.drain();
        break;
      }
      const end = await walkCpioArchive(new Prefixed(head, stream), c, `${where}, decompressed`);
      if (end === 'trailer') {
        sawArchive = true;
        continue;
      }
      clean = false;
      if (end === 'stopped') break;
      // A damaged archive inside intact compression: decompress to the end to find the next segment.
      await stream.drain();
      break;
    }
  } finally {
    c.segment.decompressedBytes = stream.position;
    if (!stream.atEnd || stream.capped) await decoder.return({}).catch(() => undefined);
  }
  if (stream.capped) {
    c.warn(`stopped after ${c.limits.maxDecompressedBytes} decompressed bytes (the limit) in ${where}`);
    c.incomplete = true;
    return { sawArchive };
  }
  if (stream.error !== undefined) {
    c.warn(`${where}: ${stream.error}`);
    c.incomplete = true;
    return { sawArchive };
  }
  if (!clean || c.stopped) c.incomplete = true;
  if (result === undefined) return { sawArchive };
  if (result.note !== undefined) c.warn(`${where}: ${result.note}`);
  if (result.end === undefined) {
    c.incomplete ||= compression !== 'lzma';
    return { sawArchive };
  }
  c.segment.length = result.end - offset;
  return { end: result.end, sawArchive };
}

/** A stream with some already-read bytes put back in front. */
class Prefixed implements ByteStream {
  private at = 0;
  constructor(
    private readonly head: Uint8Array,
    private readonly inner: ByteStream,
  ) {}

  private get left(): number {
    return this.head.length - this.at;
  }

  get position(): number {
    return this.inner.position - this.left;
  }

  async peek(): Promise<number> {
    return this.left > 0 ? this.head[this.at]! : this.inner.peek();
  }

  async read(n: number): Promise<Uint8Array> {
    if (this.left === 0) return this.inner.read(n);
    const own = this.head.subarray(this.at, this.at + Math.min(n, this.left));
    this.at += own.length;
    if (own.length === n) return own;
    return Buffer.concat([own, await this.inner.read(n - own.length)]);
  }

  async skip(n: number): Promise<number> {
    const own = Math.min(n, this.left);
    this.at += own;
    return own + (n > own ? await this.inner.skip(n - own) : 0);
  }

  async skipZeros(): Promise<number> {
    let n = 0;
    while (this.left > 0 && this.head[this.at] === 0) {
      this.at++;
      n++;
    }
    return this.left > 0 ? n : n + (await this.inner.skipZeros());
  }
}

function isExt2Superblock(atSuperblock: Uint8Array): boolean {
  return atSuperblock[56] === 0x53 && atSuperblock[57] === 0xef;
}

function hex(b: Uint8Array): string {
  return Array.from(b.subarray(0, 8), (x) => x.toString(16).padStart(2, '0')).join(' ');
}
