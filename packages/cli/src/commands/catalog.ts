import { open, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { FileSink } from '@amitrans/block';
import {
  catalog, CatalogError, CSV_COLUMNS, csvRow, parseClasses, parseList, renderSummary, workItem,
  type CatalogSummary, type ClassifiedImage, type ImageFilter, type ListingInput, type ListingWarning,
} from '@amitrans/catalog';
import { line, type CliIo } from '../io.js';
import { UsageError } from '../usage.js';

export interface CatalogArgs {
  inputs: string[];
  kernels: string | undefined;
  aki: string | string[] | undefined;
  class: string | string[] | undefined;
  arch: string | string[] | undefined;
  rootType: string | undefined;
  owner: string | string[] | undefined;
  ids: boolean;
  csv: boolean;
  json: boolean;
  worklist: string | undefined;
}

/** Warnings past this many are counted, not printed: a corrupt 2-million-line file must not flood the terminal. */
const MAX_WARNINGS_SHOWN = 1000;
/** Output is gathered into writes of about this size: one write per id would cost more than the parsing. */
const WRITE_BATCH = 64 * 1024;

export async function catalogCommand(args: CatalogArgs, io: CliIo): Promise<void> {
  const modes = [args.ids && '--ids', args.csv && '--csv', args.json && '--json'].filter(Boolean);
  if (modes.length > 1) throw new UsageError(`${modes.join(' and ')} cannot be used together`);
  if (args.inputs.filter((f) => f === '-').length > 1) throw new UsageError('- (stdin) can be read only once');
  const filter = parseFilter(args);
  // A mistyped name fails before any output is written.
  for (const file of [...args.inputs, ...(args.kernels ? [args.kernels] : [])]) if (file !== '-') await assertFile(file);

  const stdout = new BatchedWriter(io.stdout);
  const worklist = args.worklist ? await WorklistFile.create(args.worklist) : undefined;
  const warnings = new WarningPrinter(io);
  const onImage = imagePrinter(args, stdout, worklist);
  let summary: CatalogSummary;
  try {
    summary = await catalog({
      inputs: args.inputs.map((file) => listingInput(file, io)),
      ...(args.kernels ? { kernels: listingInput(args.kernels, io) } : {}),
      filter,
      onImage,
      onWarning: (w) => warnings.print(w),
      onChunk: () => Promise.all([stdout.drained(), worklist?.drained()]).then(() => undefined),
    });
    if (summary.imagesRead === 0 && summary.linesSkipped > 0) {
      throw new CatalogError('E_NOT_A_LISTING', `no image found in ${args.inputs.join(', ')}: ${summary.linesSkipped} line(s) skipped`);
    }
    await worklist?.commit();
  } catch (err) {
    await worklist?.abort();
    throw err;
  } finally {
    warnings.finish();
  }
  await stdout.flush();
  report(args, summary, io, worklist);
}

function parseFilter(args: CatalogArgs): ImageFilter {
  const list = (v: string | string[] | undefined): string[] => parseList(v === undefined ? [] : Array.isArray(v) ? v : [v]);
  let classes;
  try {
    classes = parseClasses(list(args.class));
  } catch (err) {
    if (err instanceof CatalogError) throw new UsageError(err.message);
    throw err;
  }
  return { akis: list(args.aki), classes, arches: list(args.arch), rootTypes: list(args.rootType), owners: list(args.owner) };
}

async function assertFile(file: string): Promise<void> {
  const st = await stat(file);
  if (st.isDirectory()) throw new CatalogError('E_NO_INPUT', `${file} is a directory, not a describe-images listing`);
}

function listingInput(file: string, io: CliIo): ListingInput {
  if (file === '-') return { source: '-', chunks: io.stdin ?? (process.stdin as AsyncIterable<Buffer>) };
  return { source: file, chunks: readAhead(file) };
}

/**
 * A file's chunks with the next read already under way while the caller works on the
 * current one: a read stream waits for the consumer before reading on, and on a big
 * listing the parser would then sit idle for a tenth of the time. Small chunks stay in
 * the CPU's cache while they are scanned and are freed sooner: on the 2-million-line text
 * listing 64 KiB to 256 KiB chunks took about 1 s and 62 MiB where 1 MiB chunks took
 * 1.36 s and 136 MiB; on 450,000 JSON lines 64 KiB chunks peaked at 75 MiB, 256 KiB at 143.
 */
async function* readAhead(file: string, size = 1 << 16): AsyncGenerator<Buffer> {
  const handle = await open(file, 'r');
  const read = () => handle.read(Buffer.allocUnsafe(size), 0, size, null);
  let next: ReturnType<typeof read> | undefined;
  try {
    next = read();
    for (;;) {
      const { bytesRead, buffer } = await next;
      next = undefined;
      if (bytesRead === 0) return;
      next = read();
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    // A read still under way (the caller stopped early) ends before the file closes.
    await next?.catch(() => undefined);
    await handle.close();
  }
}

/** What goes to stdout (and the work list) for each selected image. */
function imagePrinter(args: CatalogArgs, stdout: BatchedWriter, worklist: WorklistFile | undefined): (image: ClassifiedImage) => void {
  if (args.csv) stdout.write(`${CSV_COLUMNS.join(',')}\n`);
  return (image) => {
    if (args.ids) stdout.write(`${image.id}\n`);
    else if (args.csv) stdout.write(`${csvRow(image)}\n`);
    const item = worklist && workItem(image);
    if (item) worklist.add(JSON.stringify(item));
  };
}

/** The table (or its JSON) on stdout; with --ids or --csv a one-line summary on stderr instead. */
function report(args: CatalogArgs, summary: CatalogSummary, io: CliIo, worklist: WorklistFile | undefined): void {
  if (args.json) {
    line(io.stdout, JSON.stringify({ ...summary, ...(worklist ? { worklist: { file: worklist.path, images: worklist.count } } : {}) }, null, 2));
    return;
  }
  const listed = worklist ? `; work list ${worklist.path}: ${worklist.count} image(s)` : '';
  if (args.ids || args.csv) {
    line(io.stderr, `amitrans catalog: ${summary.imagesRead} images read, ${summary.selected} selected, ${summary.totalPvGrub} pv-grub, ${summary.linesSkipped} line(s) skipped${listed}`);
    return;
  }
  for (const l of renderSummary(summary)) line(io.stdout, l);
  if (worklist) line(io.stdout, `Work list: ${worklist.path} (${worklist.count} image(s))`);
}

class WarningPrinter {
  private count = 0;

  constructor(private readonly io: CliIo) {}

  print(w: ListingWarning): void {
    if (++this.count <= MAX_WARNINGS_SHOWN) line(this.io.stderr, `amitrans: warning: ${w.source}:${w.line}: ${w.message}`);
  }

  finish(): void {
    const hidden = this.count - MAX_WARNINGS_SHOWN;
    if (hidden > 0) line(this.io.stderr, `amitrans: warning: ${hidden} more warning(s) not shown`);
  }
}

type Sink = Pick<NodeJS.WritableStream, 'write'> & { once?: NodeJS.WritableStream['once'] };

/** Gathers small writes; waits for 'drain' when the sink says it is full. */
class BatchedWriter {
  private parts: string[] = [];
  private size = 0;
  private full = false;

  constructor(private readonly sink: Sink) {}

  write(text: string): void {
    this.parts.push(text);
    this.size += text.length;
    if (this.size >= WRITE_BATCH) this.send();
  }

  async drained(): Promise<void> {
    if (this.full && typeof this.sink.once === 'function') await once(this.sink as NodeJS.WritableStream, 'drain');
    this.full = false;
  }

  async flush(): Promise<void> {
    this.send();
    await this.drained();
  }

  private send(): void {
    if (this.parts.length === 0) return;
    const ok = this.sink.write(this.parts.join(''));
    this.parts = [];
    this.size = 0;
    if (ok === false) this.full = true;
  }
}

/** The work list, written under a temporary name and renamed only once it is complete. */
/**
 * The work list: a FileSink like every output, so it takes its name only when complete,
 * is never written over an input or a device, and a signal leaves nothing behind.
 */
class WorklistFile {
  count = 0;
  private text = '';

  private constructor(readonly path: string, private readonly sink: FileSink) {}

  static async create(path: string): Promise<WorklistFile> {
    return new WorklistFile(path, await FileSink.create(path, { sync: false }));
  }

  add(json: string): void {
    this.count++;
    this.text += `${json}\n`;
  }

  /** Called between chunks: write what has gathered once it is worth a write. */
  async drained(): Promise<void> {
    if (this.text.length >= WRITE_BATCH) await this.flush();
  }

  async commit(): Promise<void> {
    await this.flush();
    await this.sink.commit();
  }

  abort(): Promise<void> {
    return this.sink.abort();
  }

  private async flush(): Promise<void> {
    if (!this.text) return;
    const data = Buffer.from(this.text, 'utf8');
    this.text = '';
    await this.sink.write(data);
  }
}
