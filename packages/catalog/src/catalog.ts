import { addKernel, classify, type ClassifiedImage, type KernelIndex } from './classify.js';
import { readListing } from './listing.js';
import type { ListingWarning } from './record.js';
import { isEmptyFilter, matches, type ImageFilter } from './select.js';
import { Tally, type CatalogSummary } from './tally.js';

export interface ListingInput {
  /** File name, or '-' for stdin: warnings name it. */
  source: string;
  chunks: AsyncIterable<Buffer>;
}

export interface CatalogOptions {
  inputs: Iterable<ListingInput>;
  /** A describe-images listing of the kernel images, for AKIs the built-in table lacks. */
  kernels?: ListingInput;
  filter?: ImageFilter;
  /** Each image the filters keep, in listing order. */
  onImage?: (image: ClassifiedImage) => void;
  onWarning?: (warning: ListingWarning) => void;
  /** Called after each chunk; return a promise to hold reading (output back-pressure). */
  onChunk?: () => Promise<void> | void;
}

/** Read, classify, filter and count; the images stream through, only counts are kept. */
export async function catalog(options: CatalogOptions): Promise<CatalogSummary> {
  let skipped = 0;
  const warn = (w: ListingWarning): void => {
    skipped++;
    options.onWarning?.(w);
  };
  const kernels: KernelIndex = new Map();
  if (options.kernels) await readListing(options.kernels.chunks, options.kernels.source, (k) => void addKernel(kernels, k), warn);
  const tally = new Tally();
  const filter = options.filter ?? {};
  const all = isEmptyFilter(filter);
  for (const input of options.inputs) {
    await readListing(input.chunks, input.source, (record) => {
      tally.read();
      const image = classify(record, kernels);
      if (!all && !matches(image, filter)) return;
      tally.add(image);
      options.onImage?.(image);
    }, warn, options.onChunk);
  }
  return tally.summary(skipped);
}
