import { open } from 'node:fs/promises';
import { ImageError } from '@amitrans/block';
import { AkiTable } from './akis.js';
import { classify, pvGrubRowFrom, type Classified } from './classify.js';
import type { ImageRecord, ListingWarning, Warn } from './image.js';
import { JsonScanner } from './json.js';
import { LineSplitter } from './lines.js';
import { Tally, type AkiCount, type CatalogFilters, type TallyData } from './tally.js';
import { TextListingParser } from './text.js';

export interface CatalogOptions {
  /** describe-images listings of kernel images: AKIs not in the built-in table are classified by name. */
  kernels?: readonly string[];
  filters?: CatalogFilters;
  /** Each image that passes the filters, in listing order (awaited: output backpressure). */
  onImage?: (c: Classified) => void | Promise<void>;
  /** Each line or object skipped, with its file and line number. */
  onWarning?: (w: ListingWarning) => void;
  /** Where '-' reads from (default: process.stdin). */
  stdin?: AsyncIterable<Uint8Array>;
  signal?: AbortSignal;
}

export type { AkiCount, CatalogFilters };

/** total: every image read; matched: those the filters kept, which the other counts are of. */
export interface CatalogSummary extends TallyData {
  /** Lines or objects skipped with a warning. */
  skipped: number;
  /** AKIs added from --kernels listings. */
  kernelsLearned: number;
}

/** Read, classify and count the images of every listing (files, or '-' for stdin), streaming. */
export async function catalog(inputs: readonly string[], options: CatalogOptions = {}): Promise<CatalogSummary> {
  const akis = new AkiTable();
  let skipped = 0;
  const warn: Warn = (w) => {
    skipped++;
    options.onWarning?.(w);
  };
  // Rows from --kernels listings win over the built-in table: they were read.
  let learned = 0;
  for (const file of options.kernels ?? []) {
    await forEachImage(file, warn, (image) => {
      const row = pvGrubRowFrom(image);
      if (!row) return;
      if (!akis.get(row.id)) learned++;
      akis.add(row);
    }, options);
  }
  const tally = new Tally(options.filters);
  const count = (image: ImageRecord): void | Promise<void> => {
    const c = classify(image, akis);
    if (tally.add(c)) return options.onImage?.(c);
  };
  for (const file of inputs.length ? inputs : ['-']) await forEachImage(file, warn, count, options);
  return { ...tally.data(), skipped, kernelsLearned: learned };
}

/**
 * Every image of one listing, text or JSON (told by its first non-blank byte), handed to
 * `onImage` in order. Chunks are read asynchronously and parsed synchronously: a promise
 * per line or per image would cost more than the parsing.
 */
export async function forEachImage(
  file: string,
  warn: Warn,
  onImage: (image: ImageRecord) => void | Promise<void>,
  o: { stdin?: AsyncIterable<Uint8Array>; signal?: AbortSignal } = {},
): Promise<void> {
  const name = file === '-' ? '(stdin)' : file;
  const source = file === '-' ? (o.stdin ?? process.stdin) : fileChunks(file);
  let parse: ((chunk: Uint8Array, emit: (i: ImageRecord) => void) => void) | undefined;
  let finish: (emit: (i: ImageRecord) => void) => void = () => undefined;
  // Images go to onImage as they are parsed (young objects die young: less GC); a handler
  // that must wait returns a promise, and those are awaited before the next chunk is read.
  let waits: Promise<void>[] = [];
  const emit = (i: ImageRecord): void => {
    const r = onImage(i);
    if (r) waits.push(r);
  };
  const hand = async (): Promise<void> => {
    if (!waits.length) return;
    const w = waits;
    waits = [];
    await Promise.all(w);
  };
  try {
    for await (const chunk of source) {
      o.signal?.throwIfAborted();
      if (!parse) {
        const kind = sniff(chunk);
        if (kind === undefined) continue; // blank so far: whitespace is the same in both forms
        ({ parse, finish } = kind === 'json' ? jsonParser(name, warn) : textParser(name, warn));
      }
      parse(chunk, emit);
      await hand();
    }
  } catch (err) {
    if (err instanceof ImageError || (err as Error).name === 'AbortError') throw err;
    throw new ImageError('E_IO', `cannot read the listing: ${(err as Error).message}`, { file: name, cause: err });
  }
  finish(emit);
  await hand();
}

/**
 * A file's bytes through one reused buffer: every chunk is parsed before the next read, so
 * no chunk is kept, and memory stays flat however long the listing (a read stream would
 * allocate a new buffer per chunk and leave them all to the garbage collector).
 */
async function* fileChunks(file: string): AsyncGenerator<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    // Under Node's 1,031,913-byte threshold, a chunk decodes to a string on the V8 heap,
    // collected young; above it, to an external string the collector frees late (RSS).
    const buf = Buffer.allocUnsafe(768 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/** 'json' when the first non-blank byte is '{' or '[', 'text' for anything else, undefined if all blank. */
function sniff(chunk: Uint8Array): 'json' | 'text' | undefined {
  const first = chunk.find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  return first === undefined ? undefined : first === 0x7b || first === 0x5b ? 'json' : 'text';
}

function textParser(file: string, warn: Warn): { parse: (c: Uint8Array, emit: (i: ImageRecord) => void) => void; finish: (emit: (i: ImageRecord) => void) => void } {
  const lines = new LineSplitter(file, warn);
  const parser = new TextListingParser(file, warn);
  return {
    parse: (chunk, emit) => lines.push(chunk, (text, start, end, no) => parser.line(text, start, end, no, emit)),
    finish: (emit) => {
      lines.end((text, start, end, no) => parser.line(text, start, end, no, emit));
      parser.end(emit);
    },
  };
}

function jsonParser(file: string, warn: Warn): { parse: (c: Uint8Array, emit: (i: ImageRecord) => void) => void; finish: (emit: (i: ImageRecord) => void) => void } {
  const scanner = new JsonScanner(file, warn);
  return {
    parse: (chunk, emit) => {
      for (const { text, line } of scanner.feed(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
        const image = scanner.toImage(text, line);
        if (image) emit(image);
      }
    },
    finish: () => scanner.end(),
  };
}
