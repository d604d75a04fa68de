import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { extname } from 'node:path';
import {
  FileSink,
  ImageError,
  StreamSink,
  type BlockDevice,
  type FormatDriver,
  type Sink,
} from '@amitrans/block';
import { CompressingSink, checkCompressible, planOutput } from './compress-output.js';
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

export interface ConvertResult {
  input: string;
  output: string;
  inputFormat: string;
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
  /** Set when the output file is compressed ('gzip', 'bzip2', 'xz'); `format` is what is inside. */
  compression?: string;
}

/**
 * Convert any readable image to any writable format. The output is written under a
 * temporary name and renamed when complete; on error nothing is left at `output`.
 * `output` '-' writes to stdout (formats that can be written in one pass).
 */
export async function convert(input: string, output: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const started = performance.now();
  // A .gz/.bz2/.xz name or -o compress= makes a compressed deliverable (x.vhd.bz2).
  const plan = planOutput(output, options.options);
  const driver = writerByName(options.format ?? (output === '-' ? 'raw' : formatFromName(plan.baseName)));
  const fmtOptions = plan.options;
  checkOptions(driver, fmtOptions);
  checkCompressible(driver.name, plan.compression);
  if ((output === '-' || plan.compression) && !driver.canStream?.(fmtOptions)) {
    throw new ImageError('E_UNSUPPORTED', `${driver.name} output with these options cannot be written to a stream; name an output file`);
  }
  const img = await openImage(input, {
    decompressProgress: (done) => options.progress?.('decompress', done, 0),
  });
  let sink: Sink | undefined;
  try {
    // A map-less (raw) input is passed as one data extent: every writer checks the blocks it
    // reads for zeros itself, so wrapping it in zero detection would only read the data twice.
    const disk: BlockDevice = img.disk;
    const hash = options.sha256 && output === '-' ? createHash('sha256') : undefined;
    if (output === '-') {
      const stdout = new StreamSink(process.stdout);
      sink = hash ? new HashingStreamSink(stdout, hash) : stdout;
    } else {
      sink = await FileSink.create(output, { sync: options.sync ?? false });
    }
    if (plan.compression) sink = await CompressingSink.create(sink, plan.compression);
    const result = await driver.write!(disk, sink, {
      options: fmtOptions,
      progress: (done, total) => options.progress?.('convert', done, total),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    await sink.commit();
    const out: ConvertResult = {
      input,
      output,
      inputFormat: img.compression ? `${img.detection.format} (${img.compression})` : img.detection.format,
      format: driver.name,
      virtualSize: result.virtualSize ?? disk.size,
      bytesRead: result.bytesRead,
      bytesWritten: result.bytesWritten,
      seconds: 0,
      notes: [...(result.notes ?? [])],
    };
    if (plan.compression) out.compression = plan.compression;
    if (options.sha256) out.sha256 = hash ? hash.digest('hex') : await sha256Of(output, (d, t) => options.progress?.('hash', d, t));
    out.seconds = (performance.now() - started) / 1000;
    return out;
  } catch (err) {
    await sink?.abort();
    throw err;
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
