import { constants, inflate, inflateRaw, type ZlibOptions } from 'node:zlib';
import type { BlockDevice } from './device.js';
import { ImageError, isImageError, type ErrorPlace } from './errors.js';

/**
 * Reading a container whose disk is stored in units (qcow2 clusters, VMDK grains), each
 * one absent (zeros), stored raw at a host offset, or compressed: the one read loop and
 * the one inflate of the qcow2 and VMDK readers.
 */
export type UnitPlace =
  | { readonly kind: 'zero' }
  | { readonly kind: 'raw'; readonly host: number }
  | { readonly kind: 'compressed'; readonly host: number; readonly length: number };

/** A compressed unit wanted by a read: where it is, and where its part of the unit goes. */
export interface CompressedPart {
  /** Host offset of the compressed bytes, and their length when the table gives it (0 if not). */
  readonly host: number;
  readonly length: number;
  /** The unit's index on the disk. */
  readonly unit: number;
  /** Offset inside the unit, bytes wanted, offset in the caller's buffer. */
  readonly within: number;
  readonly n: number;
  readonly from: number;
}

export interface UnitSource {
  readonly container: BlockDevice;
  readonly unitBytes: number;
  /** Largest read of raw units from the container in one request. */
  readonly maxRun: number;
  place(unit: number): Promise<UnitPlace>;
  /** The inflated unit at `host` when it is still at hand (the last one inflated). */
  recent(host: number): Uint8Array | undefined;
  /** Compressed parts (in read order) grouped into spans worth one container read each. */
  spans(parts: readonly CompressedPart[]): Iterable<CompressedPart[]>;
  /** Read a span's compressed bytes, inflate each part and copy it into `buffer`. */
  readSpan(buffer: Uint8Array, span: CompressedPart[]): Promise<void>;
}

/**
 * Fill `buffer` from `position` of the disk: runs of host-contiguous raw units are read in
 * one request each, compressed units in spans inflated on the thread pool, all at once.
 */
export async function readUnits(buffer: Uint8Array, position: number, src: UnitSource): Promise<void> {
  const size = src.unitBytes;
  const end = position + buffer.length;
  const jobs: Promise<void>[] = [];
  const compressed: CompressedPart[] = [];
  let run: { host: number; from: number; length: number } | undefined;
  const flush = (): void => {
    if (run) jobs.push(readHost(src.container, buffer.subarray(run.from, run.from + run.length), run.host));
    run = undefined;
  };
  for (let at = position; at < end; ) {
    const unit = Math.floor(at / size);
    const within = at - unit * size;
    const n = Math.min(end - at, size - within);
    const from = at - position;
    const p = await src.place(unit);
    if (p.kind === 'raw') {
      const host = p.host + within;
      if (run && run.host + run.length === host && run.length + n <= src.maxRun) run.length += n;
      else {
        flush();
        run = { host, from, length: n };
      }
    } else {
      flush();
      const recent = p.kind === 'compressed' ? src.recent(p.host) : undefined;
      if (p.kind === 'zero') buffer.fill(0, from, from + n);
      else if (recent) buffer.set(recent.subarray(within, within + n), from);
      else compressed.push({ host: p.host, length: p.length, unit, within, n, from });
    }
    at += n;
  }
  flush();
  for (const span of src.spans(compressed)) jobs.push(src.readSpan(buffer, span));
  await settleAll(jobs);
}

/** Wait for every job (so none writes into a buffer afterwards), then throw the first failure. */
export async function settleAll(jobs: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(jobs);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

/** Read host bytes; the last unit of a file may be cut short, and reads as zeros past EOF. */
async function readHost(container: BlockDevice, dest: Uint8Array, host: number): Promise<void> {
  const avail = Math.max(0, Math.min(dest.length, container.size - host));
  if (avail > 0) await container.read(dest.subarray(0, avail), host);
  dest.fill(0, avail);
}

/**
 * Inflate one compressed unit on the thread pool, through `run` (a limiter bounding the
 * inflates in flight). A sync flush accepts, as QEMU does, a stream that fills its unit
 * without a final block. A stream that does not inflate is E_CORRUPT, naming `what`.
 */
export async function inflateUnit(
  input: Uint8Array,
  o: { unitBytes: number; zlib: boolean; what: string; where: ErrorPlace; run: <T>(task: () => Promise<T>) => Promise<T> },
): Promise<Buffer> {
  const opts: ZlibOptions = { maxOutputLength: o.unitBytes, chunkSize: Math.max(64, o.unitBytes), finishFlush: constants.Z_SYNC_FLUSH };
  try {
    return await o.run(() => new Promise<Buffer>((resolve, reject) => {
      const done = (err: Error | null, result: Buffer): void => (err ? reject(err) : resolve(result));
      if (o.zlib) inflate(input, opts, done);
      else inflateRaw(input, { ...opts, windowBits: 15 }, done);
    }));
  } catch (err) {
    if (isImageError(err)) throw err;
    throw new ImageError('E_CORRUPT', `${o.what} does not inflate: ${(err as Error).message}`, o.where);
  }
}

/**
 * The decoded map tables of a sparse format (qcow2 L2 tables, VMDK grain tables), as
 * promises so concurrent reads share one load; the least recently used is dropped past
 * `maxBytes`, and a load that fails is forgotten, so a later read tries again.
 */
export class TableCache<T> {
  private readonly tables = new Map<number, Promise<T>>();
  private readonly limit: number;

  constructor(maxBytes: number, tableBytes: number) {
    this.limit = Math.max(4, Math.floor(maxBytes / tableBytes));
  }

  get(index: number, load: () => Promise<T>): Promise<T> {
    const hit = this.tables.get(index);
    if (hit) {
      this.tables.delete(index);
      this.tables.set(index, hit);
      return hit;
    }
    const loading = load();
    loading.catch(() => this.tables.delete(index));
    this.tables.set(index, loading);
    if (this.tables.size > this.limit) this.tables.delete(this.tables.keys().next().value!);
    return loading;
  }
}
