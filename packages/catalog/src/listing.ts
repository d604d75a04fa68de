import { JsonListingParser } from './json.js';
import type { ImageRecord, WarningSink } from './record.js';
import { TextListingParser } from './text.js';

export type ListingFormat = 'text' | 'json';

export interface ListingCounts {
  format: ListingFormat | undefined;
  /** Lines read (text) or lines seen (JSON). */
  lines: number;
}

interface ChunkParser {
  push(chunk: Buffer): void;
  end(): void;
}

/**
 * Read one describe-images listing, text or JSON (told apart by its first non-blank byte),
 * calling onRecord for each image as soon as it is complete. `onChunk` runs after each chunk
 * so that a caller can wait for its output to drain: nothing piles up in memory.
 */
export async function readListing(
  chunks: AsyncIterable<Buffer>,
  source: string,
  onRecord: (record: ImageRecord) => void,
  onWarning: WarningSink,
  onChunk?: () => Promise<void> | void,
): Promise<ListingCounts> {
  let parser: ChunkParser | undefined;
  let format: ListingFormat | undefined;
  let lines = 0;
  for await (const chunk of chunks) {
    if (!parser) {
      const first = firstNonBlank(chunk);
      if (first < 0) continue; // leading blank chunk: wait for content
      format = chunk[first] === 0x7b || chunk[first] === 0x5b ? 'json' : 'text';
      parser = format === 'json' ? new JsonListingParser(source, onRecord, onWarning) : new TextListingParser(source, onRecord, onWarning);
    }
    parser.push(chunk);
    if (format === 'json') lines += countNewlines(chunk);
    const wait = onChunk?.();
    if (wait) await wait;
  }
  parser?.end();
  if (parser instanceof TextListingParser) lines = parser.lines;
  return { format, lines };
}

function firstNonBlank(chunk: Buffer): number {
  for (let i = 0; i < chunk.length; i++) {
    const c = chunk[i]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return i;
  }
  return -1;
}

function countNewlines(chunk: Buffer): number {
  let n = 0;
  for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) n++;
  return n;
}
