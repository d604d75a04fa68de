import { createHash } from 'node:crypto';
import { ImageError, type BlockDevice, type ProgressOptions, type WriteResult } from '@amitrans/block';
import { displayName, type RemoteOptions } from '@amitrans/remote';
import { inputName, openImage, type ImageInput } from './open.js';
import { finishingSink, openOutput, resolveOutput, type ImageOutput, type ResolvedOutput } from './output.js';
import { metered, type NetworkSummary } from './network.js';

export interface ConvertOptions {
  /** Output format; default: from the output file name, else raw. Required for a Sink output. */
  format?: string;
  /** The name a BlockDevice input is shown under (default '<device>'). */
  name?: string;
  /** The name a Sink output is shown under (default '<sink>'). */
  outputName?: string;
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
  /** How s3:// and http(s):// inputs and outputs are reached. */
  remote?: RemoteOptions;
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
  /** Set when the input or the output is remote: bytes downloaded and uploaded. */
  network?: NetworkSummary;
}

export interface ConvertResult extends OutputSummary {
  inputFormat: string;
  /** Set when the output file is compressed ('gzip', 'bzip2', 'xz'); `format` is what is inside. */
  compression?: string;
}

export interface WriteDiskOptions extends ProgressOptions {
  /** Options for the writer instead of the prepared ones (an OVA made from an inspection). */
  writerOptions?: Record<string, string>;
  hashProgress?: (done: number, total: number) => void;
  sha256?: boolean;
  sync?: boolean;
  /** How an s3:// output is reached. */
  remote?: RemoteOptions;
}

/**
 * Write a disk to a resolved output: nothing appears at the destination until it is
 * complete; compressed when asked, hashed when asked. On any error nothing is left.
 */
export async function writeDisk(disk: BlockDevice, out: ResolvedOutput, o: WriteDiskOptions = {}): Promise<WriteResult & { sha256?: string }> {
  const dest = out.destination;
  const hash = o.sha256 && !dest.hashCommitted ? createHash('sha256') : undefined;
  const options = o.writerOptions ?? out.options;
  const sink = await openOutput(out, {
    sync: o.sync ?? false,
    ...(hash ? { hash } : {}),
    streaming: out.compression !== undefined || out.driver.canStream?.(options) === true,
    // The largest output the disk can give: its size plus metadata (sizes upload parts).
    expectedSize: Math.ceil(disk.size * 1.01) + 64 * 1024 * 1024,
    sha256: o.sha256 === true,
    ...(o.remote ? { remote: o.remote } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  try {
    const result = await out.driver.write!(disk, sink, {
      options,
      ...(o.progress ? { progress: o.progress } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    await sink.commit();
    if (!o.sha256) return result;
    return { ...result, sha256: hash ? hash.digest('hex') : await dest.hashCommitted!(o.hashProgress) };
  } catch (err) {
    await sink.abort();
    throw err;
  }
}

/**
 * Convert any readable image to any writable format. The output is written under a
 * temporary name and renamed when complete; on error nothing is left at `output`.
 * `output` '-' writes to stdout (formats that can be written in one pass). A BlockDevice
 * input stays open (it is the caller's); a Sink output is committed on success and
 * aborted on error (see ImageOutput).
 */
export function convert(input: ImageInput, output: ImageOutput, options: ConvertOptions = {}): Promise<ConvertResult> {
  return finishingSink(output, (out) => convertTo(input, out, options));
}

async function convertTo(input: ImageInput, output: ImageOutput, options: ConvertOptions): Promise<ConvertResult> {
  const started = performance.now();
  const prepared = resolveOutput(output, options.format, options.options, options.outputName);
  if (prepared.bundle) throw new ImageError('E_USAGE', 'convert writes one image; make a bundle with `amitrans bundle` (or translate -t eucalyptus -O bundle)');
  await prepared.destination.guard(pathsOf(input));
  const net = metered(options.remote, input, output);
  const img = await openImage(input, {
    remote: net.remote,
    decompressProgress: (done) => options.progress?.('decompress', done, 0),
    privateKey: options.privateKey,
    name: inputName(input, options.name),
  });
  try {
    await prepared.destination.guard(img.files);
    // A raw input maps only its holes (a sparse file's, from SEEK_DATA) and the rest as data:
    // every writer checks the blocks it reads for zeros itself, so wrapping it in zero
    // detection would only read the data twice.
    const disk: BlockDevice = img.disk;
    const result = await writeDisk(disk, prepared, {
      progress: (done, total) => options.progress?.('convert', done, total),
      hashProgress: (done, total) => options.progress?.('hash', done, total),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.sha256 ? { sha256: true } : {}),
      ...(options.sync ? { sync: true } : {}),
      remote: net.remote,
    });
    const out: ConvertResult = {
      input: img.file,
      output: displayName(prepared.output),
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
    Object.assign(out, net.summary());
    out.seconds = (performance.now() - started) / 1000;
    return out;
  } finally {
    await img.close();
  }
}

/** The input's own name, to compare an output with before it is opened: a device has none. */
export function pathsOf(input: ImageInput): string[] {
  return typeof input === 'string' ? [input] : [];
}
