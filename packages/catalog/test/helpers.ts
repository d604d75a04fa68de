import { createReadStream } from 'node:fs';
import { catalog, type CatalogOptions, type ClassifiedImage, type ListingWarning } from '../src/index.js';
import type { CatalogSummary } from '../src/tally.js';

/** Chunks of a buffer, `size` bytes each: parsers must not care where a chunk ends. */
export async function* chunked(data: Buffer | string, size: number): AsyncGenerator<Buffer> {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

export interface Run {
  summary: CatalogSummary;
  images: ClassifiedImage[];
  warnings: ListingWarning[];
}

/** Catalog in-memory texts (or files), keeping what it reports. */
export async function run(inputs: (string | Buffer | { file: string })[], options: Omit<CatalogOptions, 'inputs'> & { chunk?: number } = {}): Promise<Run> {
  const images: ClassifiedImage[] = [];
  const warnings: ListingWarning[] = [];
  const summary = await catalog({
    ...options,
    inputs: inputs.map((input, i) =>
      typeof input === 'object' && 'file' in input
        ? { source: input.file, chunks: createReadStream(input.file) }
        : { source: `input${i}`, chunks: chunked(input, options.chunk ?? 1 << 16) },
    ),
    onImage: (image) => images.push(image),
    onWarning: (w) => warnings.push(w),
  });
  return { summary, images, warnings };
}
