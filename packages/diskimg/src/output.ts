import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { FileSink, ForwardingSink, ImageError, SpooledSink, StreamSink, checkOutputPath, readOptions, identityOf, type FileIdentity, type FormatDriver, type Sink } from '@amitrans/block';
import { CompressingSink, checkCompressible, planOutput, type OutputCompression } from './compress-output.js';
import { formatFromName, writerByName } from './formats.js';
import { displayName, isRemote, parseRemote, s3Sink, SpooledS3Sink, type RemoteOptions, type S3Sink } from '@amitrans/remote';

/**
 * Where an output's bytes go. A kind of destination (a local file, stdout, an object
 * store) is one of these; the resolver picks it from the output string and nothing else
 * in diskimg looks at that string again.
 */
export interface OutputDestination {
  /** The output as the user named it, for messages and results. */
  readonly name: string;
  /**
   * The name whose extensions say the format and compression (`x.vhd.bz2`); undefined
   * when the destination has no name (stdout), which makes raw the default.
   */
  readonly fileName?: string;
  /** False when the bytes can only be appended (stdout): the format must stream. */
  readonly seekable: boolean;
  /** Refuse a destination that is one of the inputs (or a device node); nothing is written yet. */
  guard(inputs: readonly (string | FileIdentity)[]): Promise<void>;
  /** Open the sink: nothing appears at the destination until `commit`. */
  open(o: OpenOutputOptions): Promise<Sink>;
  /**
   * The sha256 of the committed output, read back. Without it a hashed output is written
   * as a stream (hashed as it goes), as stdout is.
   */
  hashCommitted?(progress?: (done: number, total: number) => void): Promise<string>;
}

/** What opening a destination may need to know beyond its name. */
export interface OpenOutputOptions {
  /** Flush a file to the disk before it takes its name. */
  sync: boolean;
  /** The writer appends only (one-pass formats, compressed outputs): a remote upload can stream. */
  streaming?: boolean;
  /** About how many bytes will be written (sizes an upload's parts). */
  expectedSize?: number;
  /** The sha256 will be asked of `hashCommitted`. */
  sha256?: boolean;
  /** How an s3:// destination is reached. */
  remote?: RemoteOptions;
  signal?: AbortSignal;
}

/** A kind of destination: claims the output strings it understands. */
export interface OutputKind {
  /** The destination for `output`, or undefined when this kind does not take it. */
  claim(output: string): OutputDestination | undefined;
}

/**
 * Where convert and translate write: a path, s3://bucket/key, '-' (stdout), or a Sink of
 * the caller's. A Sink has no name to take the format from, so the format must be given
 * (and compression as the `compress` option); a bundle cannot go into one. The caller's
 * sink is always finished by the call: committed when the output is complete, aborted on
 * any error (and by a dry run, which writes nothing). A sink that cannot seek is given
 * the formats that patch tables after the data (qcow2, VDI, VMDK monolithicSparse)
 * through a sparse local temporary, copied into it on commit.
 */
export type ImageOutput = string | Sink;

/** An output resolved and checked before any work: what writeDisk consumes. */
export interface ResolvedOutput {
  /** The output as the user named it (a Sink: the name it is shown under). */
  readonly output: string;
  readonly driver: FormatDriver;
  /** Format options (without a `compress` that names a compressor). */
  readonly options: Record<string, string>;
  readonly compression?: OutputCompression;
  readonly destination: OutputDestination;
  /** Set when the output is an EC2/Eucalyptus bundle: the image inside it is raw. */
  readonly bundle?: BundleOutput;
}

/**
 * An EC2/Eucalyptus bundle output: `-O bundle` with a directory or s3://bucket[/prefix],
 * or a name ending in .manifest.xml (its directory, and its name as the bundle's prefix).
 */
export interface BundleOutput {
  /** A local directory or s3://bucket[/prefix]: where the parts and the manifests go. */
  readonly location: string;
  /** The bundle's name, when the output named its manifest. */
  readonly prefix?: string;
}

const MANIFEST_NAME = /\.manifest\.xml$/i;

/** The bundle an output names, if it names one. */
function bundleOutputOf(output: string, format: string | undefined): BundleOutput | undefined {
  if (format !== 'bundle' && !(format === undefined && MANIFEST_NAME.test(output))) return undefined;
  if (!MANIFEST_NAME.test(output)) return { location: output };
  const s3 = /^s3:\/\//i.test(output);
  const cut = output.lastIndexOf('/');
  const location = s3 ? output.slice(0, cut + 1) : dirname(output);
  return { location, prefix: basename(output).replace(MANIFEST_NAME, '') };
}

/**
 * A bundle's destination: parts and manifests are written by @amitrans/bundle's
 * destinations (a staged directory, or S3 PUTs, manifest last), not through a sink.
 */
function bundleDestination(output: string, b: BundleOutput): OutputDestination {
  return {
    name: output,
    seekable: false,
    guard: async (inputs) => {
      if (isRemote(b.location)) return;
      const st = await stat(b.location).catch(() => undefined);
      if (st && !st.isDirectory()) throw new ImageError('E_FILE_TYPE', 'a bundle goes into a directory (or s3://bucket/prefix), and this is a file', { file: b.location });
      // A bundle's files are NAME.part.N and NAME.manifest.xml in the directory: none of them may be an input.
      for (const i of inputs) {
        const path = typeof i === 'string' ? i : i.path;
        if (resolve(dirname(path)) === resolve(b.location) && /\.(part\.\d+|manifest\.xml)$/i.test(path)) {
          throw new ImageError('E_SAME_FILE', `the input ${path} is a bundle file in the output directory; amitrans never writes over its input: name another directory`, { file: b.location });
        }
      }
    },
    open: () => Promise.reject(new ImageError('E_UNSUPPORTED', 'a bundle is written part by part by the bundler, not as one stream', { file: output })),
  };
}

const stdoutKind: OutputKind = {
  claim: (output) => (output === '-' ? {
    name: output,
    seekable: false,
    guard: async () => undefined,
    open: async () => new StreamSink(process.stdout),
  } : undefined),
};

const fileKind: OutputKind = {
  claim: (output) => ({
    name: output,
    fileName: output,
    seekable: true,
    guard: (inputs) => guardPath(output, inputs),
    open: ({ sync }) => FileSink.create(output, { sync }),
    hashCommitted: (progress) => sha256Of(output, progress),
  }),
};

/**
 * An S3 object (s3://bucket/key). One-pass formats and compressed outputs stream as a
 * multipart upload; formats that patch tables after the data (qcow2, VDI, VMDK
 * monolithicSparse) are written to a sparse local temporary, uploaded on commit: so the
 * destination counts as seekable. The object appears only when the upload completes. The
 * sha256, when asked, is taken of the bytes as they are uploaded.
 */
const s3Kind: OutputKind = {
  claim: (output) => {
    if (!isRemote(output)) return undefined;
    if (parseRemote(output).kind !== 's3') throw new ImageError('E_USAGE', `cannot write to ${displayName(output)}: only s3:// outputs can be written`);
    let sink: S3Sink | SpooledS3Sink | undefined;
    return {
      name: output,
      fileName: output,
      seekable: true,
      // An object in a bucket is never one of the local input files.
      guard: async () => undefined,
      open: async (o) => {
        const options = { ...o.remote, sha256: o.sha256 === true, ...(o.expectedSize ? { expectedSize: o.expectedSize } : {}), ...(o.signal ? { signal: o.signal } : {}) };
        sink = o.streaming ? s3Sink(output, options) : await SpooledS3Sink.create(output, options);
        return sink;
      },
      hashCommitted: async () => {
        if (sink?.sha256 === undefined) throw new ImageError('E_IO', 'the upload was not hashed', { file: displayName(output) });
        return sink.sha256;
      },
    };
  },
};

/**
 * A caller's Sink. Writers that append only get it as it is (hashed on the way when the
 * sha256 is asked for); the others get it as it is when it can seek, else through a
 * SpooledSink, as do seek-back writers when the sha256 is asked for (hashed as it is
 * copied). Nothing here closes it but the writer's commit or abort.
 */
function sinkDestination(sink: Sink, name: string): OutputDestination {
  const hash = createHash('sha256');
  return {
    name,
    seekable: true,
    // No path to compare with the inputs: the caller chose where the bytes go.
    guard: async () => undefined,
    open: async (o) => {
      if (o.streaming) return o.sha256 ? new HashingStreamSink(sink, hash) : sink;
      if (sink.seekable && !o.sha256) return sink;
      return SpooledSink.create(() => sink, o.sha256 ? { copied: (chunk) => hash.update(chunk) } : {});
    },
    hashCommitted: async () => hash.digest('hex'),
  };
}

/**
 * The kinds of destination, first claim wins: stdout, an S3 object, then a path (which
 * takes anything).
 */
export const outputKinds: OutputKind[] = [stdoutKind, s3Kind, fileKind];

/** The destination for an output string. */
export function destinationOf(output: string): OutputDestination {
  for (const kind of outputKinds) {
    const d = kind.claim(output);
    if (d) return d;
  }
  throw new ImageError('E_USAGE', `cannot write to '${output}'`);
}

/**
 * Resolve an output: its destination, its format from -O or the name (x.vhd.bz2), its
 * options and compression; and refuse what cannot be written (an unknown option, a stream
 * for a format that must seek) before the input is even opened.
 */
export function resolveOutput(output: ImageOutput, format: string | undefined, formatOptions: Readonly<Record<string, string>> = {}, sinkName = '<sink>'): ResolvedOutput {
  if (typeof output !== 'string') return resolveSinkOutput(output, sinkName, format, formatOptions);
  const bundle = bundleOutputOf(output, format);
  if (bundle) {
    if (Object.keys(formatOptions).length) throw new ImageError('E_USAGE', 'a bundle output takes no format options (-o)');
    return { output, driver: writerByName('raw'), options: {}, destination: bundleDestination(output, bundle), bundle };
  }
  return resolveFormat(output, destinationOf(output), format, formatOptions);
}

/** A caller's Sink as an output: the format must be named, and a bundle is not one image. */
function resolveSinkOutput(sink: Sink, name: string, format: string | undefined, formatOptions: Readonly<Record<string, string>>): ResolvedOutput {
  if (format === undefined) throw new ImageError('E_USAGE', `${name}: a Sink output has no name to take the format from: give the format`);
  if (format === 'bundle') throw new ImageError('E_USAGE', `${name}: a bundle is written to a directory or an s3:// prefix, not to a Sink`);
  return resolveFormat(name, sinkDestination(sink, name), format, formatOptions);
}

/** The format (-O or the name), its options and compression for a destination, checked. */
function resolveFormat(output: string, destination: OutputDestination, format: string | undefined, formatOptions: Readonly<Record<string, string>>): ResolvedOutput {
  let out: ResolvedOutput;
  try {
    const plan = planOutput(destination.fileName ?? '', formatOptions);
    const driver = writerByName(format ?? (destination.fileName === undefined ? 'raw' : formatFromName(plan.baseName)));
    readOptions(driver.name, driver.writeOptions ?? {}, plan.options);
    driver.checkOptions?.(plan.options);
    checkCompressible(driver, plan.compression);
    out = { output, driver, options: plan.options, destination, ...(plan.compression ? { compression: plan.compression } : {}) };
  } catch (err) {
    // Nothing has been read yet: whatever is refused here is the request itself.
    throw asUsageError(err);
  }
  if ((!out.destination.seekable || out.compression) && !out.driver.canStream?.(out.options)) {
    throw new ImageError('E_UNSUPPORTED', `${out.driver.name} output with these options cannot be written to a stream; name an output file`);
  }
  return out;
}

/**
 * Run `write` with the output it is to write, and see that a caller's Sink is finished
 * whatever happens: aborted when the call fails before or while writing, or ends without
 * committing it (a dry run). A path or URL output is passed as it is.
 */
export async function finishingSink<T>(output: ImageOutput, write: (output: ImageOutput) => Promise<T>): Promise<T> {
  if (typeof output === 'string') return write(output);
  const sink = new OnceSink(output);
  let result: T;
  try {
    result = await write(sink);
  } catch (err) {
    // The error that stopped the work is the one to report, not a failing abort's.
    await sink.abort().catch(() => undefined);
    throw err;
  }
  // Done without committing (a dry run wrote nothing): the sink is still finished.
  await sink.abort();
  return result;
}

/** A caller's sink finished once: `abort` after a successful commit (or a first abort) does nothing. */
class OnceSink extends ForwardingSink {
  #finished = false;
  override async commit(): Promise<void> {
    await this.inner.commit();
    this.#finished = true;
  }
  override async abort(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    await this.inner.abort();
  }
}

/**
 * The sink a resolved output is written through: the destination's, hashed as a stream
 * when `hash` is given, compressed when asked. On failure nothing is left open.
 */
export async function openOutput(out: ResolvedOutput, o: OpenOutputOptions & { hash?: Hash }): Promise<Sink> {
  const { hash: _hash, ...options } = o;
  const opened = await out.destination.open(options);
  const sink = o.hash ? new HashingStreamSink(opened, o.hash) : opened;
  if (!out.compression) return sink;
  try {
    return await CompressingSink.create(sink, out.compression);
  } catch (err) {
    await sink.abort();
    throw err;
  }
}

/**
 * Refuse an output that would replace an input or a device node. Called twice: before the
 * input is opened (against the input's own name), and once it is open, against every file
 * it was read from (a VMDK's extents).
 */
export function guardOutput(output: string, inputs: readonly (string | FileIdentity)[]): Promise<void> {
  return destinationOf(output).guard(inputs);
}

async function guardPath(output: string, inputs: readonly (string | FileIdentity)[]): Promise<void> {
  const ids: FileIdentity[] = [];
  for (const i of inputs) {
    if (typeof i !== 'string') ids.push(i);
    else await stat(i).then((st) => ids.push(identityOf(i, st)), () => undefined); // opening it reports why
  }
  await checkOutputPath(output, ids);
}

function asUsageError(err: unknown): unknown {
  if (!(err instanceof ImageError) || err.code === 'E_USAGE') return err;
  return new ImageError('E_USAGE', err.detail, { structure: err.structure, offset: err.offset, cause: err });
}

/** Hash an output as it streams: a stream to writers, so every byte passes `write` in order. */
class HashingStreamSink implements Sink {
  readonly seekable = false;
  private readonly zeros = new Uint8Array(1024 * 1024);
  constructor(
    private readonly inner: Sink,
    private readonly hash: Hash,
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
  pwrite(): Promise<void> {
    return Promise.reject(new ImageError('E_UNSUPPORTED', 'a hashed stream cannot be patched'));
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
