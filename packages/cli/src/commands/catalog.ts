import { catalog, IMAGE_CLASSES, WorklistWriter, type CatalogFilters, type CatalogSummary, type Classified, type ImageClass, type ListingWarning } from '@amitrans/catalog';
import { line, type CliIo } from '../io.js';
import { UsageError } from '../usage.js';

export interface CatalogArgs {
  listings: string[];
  kernels?: string | undefined;
  aki?: string | undefined;
  class?: string | undefined;
  arch?: string | undefined;
  rootType?: string | undefined;
  owner?: string | undefined;
  ids: boolean;
  csv: boolean;
  worklist?: string | undefined;
  json: boolean;
}

/** Warnings printed one by one up to this many; the summary counts them all. */
const SHOWN_WARNINGS = 20;

export async function catalogCommand(a: CatalogArgs, io: CliIo, signal: AbortSignal): Promise<void> {
  if (a.ids && a.csv) throw new UsageError('--ids and --csv both print to stdout: choose one');
  const filters = readFilters(a);
  const fromStdin = a.listings.length === 0 || a.listings.includes('-');
  if (fromStdin && process.stdin.isTTY) line(io.stderr, 'amitrans: reading a describe-images listing from the terminal (end with Ctrl-D)');
  const worklist = a.worklist === undefined ? undefined : await WorklistWriter.create(a.worklist);
  // The worklist is what the fleet translates: the pv-grub candidates, unless --class says otherwise.
  const toWorklist = (c: Classified): boolean => filters.class !== undefined || c.class === 'pvgrub-hd0' || c.class === 'pvgrub-hd00';
  let warnings = 0;
  const onWarning = (w: ListingWarning): void => {
    if (++warnings <= SHOWN_WARNINGS) line(io.stderr, `amitrans: warning: ${w.file}: line ${w.line}: ${w.message}`);
  };
  const rows = new BatchedLines(io.stdout);
  if (a.csv) await rows.add(CSV_HEADER.join(','));
  let summary: CatalogSummary;
  try {
    summary = await catalog(a.listings, {
      ...(a.kernels !== undefined ? { kernels: [a.kernels] } : {}),
      filters,
      onWarning,
      signal,
      // Synchronous unless an output must wait for its reader: a promise per image is costly.
      ...(a.ids || a.csv || worklist ? {
        onImage: (c: Classified): Promise<void> | undefined => {
          const printed = a.ids ? rows.add(c.image.id) : a.csv ? rows.add(csvRow(c)) : undefined;
          const listed = worklist && toWorklist(c) ? worklist.add(c) : undefined;
          return printed && listed ? Promise.all([printed, listed]).then(() => undefined) : (printed ?? listed);
        },
      } : {}),
    });
    await rows.flush();
    await worklist?.commit();
  } catch (err) {
    await worklist?.abort();
    throw err;
  }
  if (warnings > SHOWN_WARNINGS) line(io.stderr, `amitrans: warning: ${warnings - SHOWN_WARNINGS} more warnings not shown`);
  const out = a.ids || a.csv ? io.stderr : io.stdout;
  if (a.json) line(out, JSON.stringify({ ...summary, ...(worklist ? { worklist: { file: a.worklist, images: worklist.count } } : {}) }, null, 2));
  else if (!a.ids && !a.csv) for (const l of renderSummary(summary)) line(out, l);
  if (worklist && !a.json) line(io.stderr, `${a.worklist}: ${worklist.count} images`);
}

/**
 * Lines to stdout in 64 KiB writes, waiting for 'drain' when the reader is slower: two
 * million ids through a pipe never pile up in memory.
 */
class BatchedLines {
  private text = '';
  constructor(private readonly out: CliIo['stdout']) {}

  /** A promise only when the batch was written and the reader is behind. */
  add(l: string): Promise<void> | undefined {
    this.text += `${l}\n`;
    return this.text.length >= 64 * 1024 ? this.flush() : undefined;
  }

  async flush(): Promise<void> {
    if (!this.text) return;
    const ok = this.out.write(this.text);
    this.text = '';
    const stream = this.out as Partial<NodeJS.WritableStream>;
    if (!ok && typeof stream.once === 'function') await new Promise<void>((resolve) => stream.once!('drain', () => resolve()));
  }
}

function readFilters(a: CatalogArgs): CatalogFilters {
  const list = (v: string | undefined): string[] | undefined => (v === undefined ? undefined : v.split(',').map((x) => x.trim()).filter(Boolean));
  const f: CatalogFilters = {};
  const classes = list(a.class);
  if (classes) {
    const bad = classes.filter((c) => !(IMAGE_CLASSES as readonly string[]).includes(c));
    if (bad.length) throw new UsageError(`--class ${bad.join(',')}: expected ${IMAGE_CLASSES.join(', ')}`);
    f.class = classes as ImageClass[];
  }
  const aki = list(a.aki);
  if (aki) f.aki = aki;
  const arch = list(a.arch);
  if (arch) f.arch = arch;
  const rootType = list(a.rootType);
  if (rootType) f.rootType = rootType;
  const owner = list(a.owner);
  if (owner) f.owner = owner;
  return f;
}

const CSV_HEADER = ['id', 'class', 'arch', 'root_device_type', 'kernel', 'pvgrub_version', 'pvgrub_disk', 'owner', 'state', 'public', 'virtualization', 'location', 'snapshot'];

function csvRow(c: Classified): string {
  const i = c.image;
  const cells = [i.id, c.class, i.arch, i.rootDeviceType, i.kernelId, c.pvgrub?.version ?? '', c.pvgrub?.disk ?? '', i.ownerAlias ?? i.owner, i.state,
    i.public === undefined ? '' : String(i.public), i.virtualizationType, i.location, i.snapshot ?? ''];
  return cells.map(csvCell).join(',');
}

/** RFC 4180: quote a cell holding a comma, quote or line break; double its quotes. */
function csvCell(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** The notes' table: images per pv-grub AKI with its version, disk and arch, then the totals. */
export function renderSummary(s: CatalogSummary): string[] {
  const out = ['pv-grub AKI   version  disk  arch    region          images'];
  for (const r of s.byAki) out.push(`${r.aki.padEnd(13)} ${r.version.padEnd(8)} ${r.disk.padEnd(5)} ${r.arch.padEnd(7)} ${(r.region || '-').padEnd(15)} ${r.count}`);
  out.push('', `Total pv-grub images: ${s.pvgrub} of ${s.matched}${s.matched !== s.total ? ` matching (${s.total} read)` : ''}`);
  out.push(`By class: ${IMAGE_CLASSES.map((c) => `${c} ${s.byClass[c]}`).join(', ')}`);
  if (s.kernelsLearned) out.push(`AKIs classified from --kernels: ${s.kernelsLearned}`);
  if (s.skipped) out.push(`Skipped: ${s.skipped} lines or objects (see the warnings)`);
  return out;
}
