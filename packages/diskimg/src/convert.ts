import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import {
  FileSink,
  ImageError,
  checkOutputPath,
  identityOf,
  type FileIdentity,
  StreamSink,
  type BlockDevice,
  type FormatDriver,
  type Sink,
  type WriteResult,
} from '@amitrans/block';
import { CompressingSink, checkCompressible, planOutput, type OutputCompression } from './compress-output.js';
import { drivers } from './drivers.js';
import { openImage } from './open.js';
import { rawDriver } from './raw.js';

/** Every format amitrans can write, raw first. */
export function writableDrivers(): FormatDriver[] {
  return [rawDriver, ...drivers].filter((d) => d.write);
}

export function writerByName(name: string): FormatDriver {
  const alias: Record<string, string> = { vpc: 'vhd', img: 'raw' };
  const wanted = alias[name] ?? name;
  const d = writableDrivers().find((x) => x.name === wanted);
  if (!d) {
    throw new ImageError('E_UNSUPPORTED', `unknown output format '${name}' (known: ${writableDrivers().map((x) => x.name).join(', ')})`);
  }
  return d;
}

/** The output format a file name suggests, as qemu-img users name files; raw otherwise. */
export function formatFromName(path: string): string {
  const ext = extname(path).toLowerCase().replace(/^\./, '');
  const known: Record<string, string> = { qcow2: 'qcow2', qcow: 'qcow2', vhd: 'vhd', vpc: 'vhd', vdi: 'vdi', vmdk: 'vmdk', ova: 'ova' };
  return known[ext] ?? 'raw';
}

export interface ConvertOptions {
  /** Output format; default: from the output file name, else raw. */
  format?: string;
  /** The private key that opens a bundle input (default: EUCA_PRIVATE_KEY, EC2_PRIVATE_KEY). */
  privateKey?: string | undefined;
  /** Format options in qemu-img's -o style. */
  options?: Record<string, string>;
  /** Progress: stage and bytes done of total. */
  progress?: (stage: 'decompress' | 'convert' | 'hash', done: number, total: number) => void;
  /** Compute the sha256 of the output. */
  sha256?: boolean;
  /**
   * Flush the output to the disk before it takes its name. Off by default, as qemu-img
   * convert (cache=unsafe): the rename still means no reader sees a half-written file.
   */
  sync?: boolean;
  signal?: AbortSignal;
}

/** What writing an output reports, for convert and translate alike. */
export interface OutputSummary {
  input: string;
  output: string;
  /** The format written (for a compressed output, what is inside). */
  format: string;
  virtualSize: number;
  /** Bytes of the virtual disk read from the input (holes are never read). */
  bytesRead: number;
  /** Bytes of data stored in the output. */
  bytesWritten: number;
  seconds: number;
  sha256?: string;
  /** What the writer decided that the user should know (a rounded size). */
  notes: string[];
}

export interface ConvertResult extends OutputSummary {
  inputFormat: string;
  /** Set when the output file is compressed ('gzip', 'bzip2', 'xz'); `format` is what is inside. */
  compression?: string;
}

/** An output resolved and checked before any work: format, options, compression. */
export interface PreparedOutput {
  output: string;
  driver: FormatDriver;
  /** Format options (without `compress`). */
  options: Record<string, string>;
  compression?: OutputCompression;
}

/**
 * Resolve the output format from -O, the output name (x.vhd.bz2) and -o, and refuse what
 * cannot be written (an unknown option, a stream for a format that must seek) before the
 * input is even opened.
 */
export function prepareOutput(output: string, format: string | undefined, formatOptions: Readonly<Record<string, string>> = {}): PreparedOutput {
  const out = resolveOutput(output, format, formatOptions);
  if ((output === '-' || out.compression) && !out.driver.canStream?.(out.options)) {
    throw new ImageError('E_UNSUPPORTED', `${out.driver.name} output with these options cannot be written to a stream; name an output file`);
  }
  return out;
}

/** Format, options and compression from the request alone: what is wrong here is E_USAGE. */
function resolveOutput(output: string, format: string | undefined, formatOptions: Readonly<Record<string, string>>): PreparedOutput {
  try {
    const plan = planOutput(output, formatOptions);
    const driver = writerByName(format ?? (output === '-' ? 'raw' : formatFromName(plan.baseName)));
    checkOptions(driver, plan.options);
    driver.checkOptions?.(plan.options);
    checkCompressible(driver.name, plan.compression);
    return { output, driver, options: plan.options, ...(plan.compression ? { compression: plan.compression } : {}) };
  } catch (err) {
    // Nothing has been read yet: whatever is refused here is the request itself.
    throw asUsageError(err);
  }
}


function asUsageError(err: unknown): unknown {
  if (!(err instanceof ImageError) || err.code === 'E_USAGE') return err;
  return new ImageError('E_USAGE', err.detail, { structure: err.structure, offset: err.offset, cause: err });
}

export interface WriteDiskOptions {
  /** Options for the writer instead of the prepared ones (an OVA made from an inspection). */
  writerOptions?: Record<string, string>;
  progress?: (done: number, total: number) => void;
  hashProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  sha256?: boolean;
  sync?: boolean;
}

/**
 * Write a disk to a prepared output: under a temporary name renamed when complete (or to
 * stdout), compressed when asked, hashed when asked. On any error nothing is left.
 */
export async function writeDisk(disk: BlockDevice, out: PreparedOutput, o: WriteDiskOptions = {}): Promise<WriteResult & { sha256?: string }> {
  let sink: Sink | undefined;
  try {
    const hash = o.sha256 && out.output === '-' ? createHash('sha256') : undefined;
    if (out.output === '-') {
      const stdout = new StreamSink(process.stdout);
      sink = hash ? new HashingStreamSink(stdout, hash) : stdout;
    } else {
      sink = await FileSink.create(out.output, { sync: o.sync ?? false });
    }
    if (out.compression) sink = await CompressingSink.create(sink, out.compression);
    const result = await out.driver.write!(disk, sink, {
      options: o.writerOptions ?? out.options,
      ...(o.progress ? { progress: o.progress } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    await sink.commit();
    if (!o.sha256) return result;
    return { ...result, sha256: hash ? hash.digest('hex') : await sha256Of(out.output, o.hashProgress) };
  } catch (err) {
    await sink?.abort();
    throw err;
  }
}

/**
 * Refuse an output that would replace an input or a device node. Called twice: before the
 * input is opened (against the input's own name), and once it is open, against every file
 * it was read from (a VMDK's extents).
 */
export async function guardOutput(output: string, inputs: readonly (string | FileIdentity)[]): Promise<void> {
  if (output === '-') return;
  const ids: FileIdentity[] = [];
  for (const i of inputs) {
    if (typeof i !== 'string') ids.push(i);
    else await stat(i).then((st) => ids.push(identityOf(i, st)), () => undefined); // opening it reports why
  }
  await checkOutputPath(output, ids);
}

/**
 * Convert any readable image to any writable format. The output is written under a
 * temporary name and renamed when complete; on error nothing is left at `output`.
 * `output` '-' writes to stdout (formats that can be written in one pass).
 */
export async function convert(input: string, output: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const started = performance.now();
  const prepared = prepareOutput(output, options.format, options.options);
  await guardOutput(output, [input]);
  const img = await openImage(input, {
    decompressProgress: (done) => options.progress?.('decompress', done, 0),
    privateKey: options.privateKey,
  });
  try {
    await guardOutput(output, img.files);
    // A map-less (raw) input is passed as one data extent: every writer checks the blocks it
    // reads for zeros itself, so wrapping it in zero detection would only read the data twice.
    const disk: BlockDevice = img.disk;
    const result = await writeDisk(disk, prepared, {
      progress: (done, total) => options.progress?.('convert', done, total),
      hashProgress: (done, total) => options.progress?.('hash', done, total),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.sha256 ? { sha256: true } : {}),
      ...(options.sync ? { sync: true } : {}),
    });
    const out: ConvertResult = {
      input,
      output,
      inputFormat: img.compression ? `${img.detection.format} (${img.compression})` : img.detection.format,
      format: prepared.driver.name,
      virtualSize: result.virtualSize ?? disk.size,
      bytesRead: result.bytesRead,
      bytesWritten: result.bytesWritten,
      seconds: 0,
      notes: [...(result.notes ?? [])],
    };
    if (prepared.compression) out.compression = prepared.compression;
    if (result.sha256) out.sha256 = result.sha256;
    out.seconds = (performance.now() - started) / 1000;
    return out;
  } finally {
    await img.close();
  }
}

function checkOptions(driver: FormatDriver, options: Record<string, string>): void {
  const known = driver.writeOptions ?? {};
  for (const key of Object.keys(options)) {
    if (!(key in known)) {
      const list = Object.keys(known);
      throw new ImageError('E_UNSUPPORTED',
        `${driver.name} output has no option '${key}'${list.length ? ` (options: ${list.join(', ')})` : ' (it takes no options)'}`);
    }
  }
}

/** Hash a non-seekable output as it streams (a file output is hashed after commit instead). */
class HashingStreamSink implements Sink {
  readonly seekable = false;
  private readonly zeros = new Uint8Array(1024 * 1024);
  constructor(
    private readonly inner: Sink,
    private readonly hash: ReturnType<typeof createHash>,
  ) {}
  get position(): number {
    return this.inner.position;
  }
  write(data: Uint8Array): Promise<void> {
    this.hash.update(data);
    return this.inner.write(data);
  }
  async skip(length: number): Promise<void> {
    for (let left = length; left > 0; left -= this.zeros.length) await this.write(this.zeros.subarray(0, Math.min(left, this.zeros.length)));
  }
  pwrite(data: Uint8Array, position: number): Promise<void> {
    return this.inner.pwrite(data, position);
  }
  commit(): Promise<void> {
    return this.inner.commit();
  }
  abort(): Promise<void> {
    return this.inner.abort();
  }
}

async function sha256Of(path: string, progress?: (done: number, total: number) => void): Promise<string> {
  const hash = createHash('sha256');
  let done = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    done += (chunk as Buffer).length;
    progress?.(done, 0);
  }
  return hash.digest('hex');
}
