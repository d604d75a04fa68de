import { ImageError } from '@amitrans/block';

/** A run of sectors something occupies: a partition, an EBR, a GPT header or entry array. */
export interface Occupied {
  readonly first: number;
  /** Exclusive. */
  readonly end: number;
  readonly what: string;
  /** Where the entry describing it sits, for the error. */
  readonly structure: string;
  readonly offset: number;
}

/** Throw E_OVERLAP when any two runs share a sector. Sort + one pass: O(n log n). */
export function checkNoOverlap(runs: readonly Occupied[]): void {
  const sorted = [...runs].sort((a, b) => a.first - b.first || a.end - b.end);
  let widest: Occupied | undefined;
  for (const run of sorted) {
    if (widest && run.first < widest.end) {
      throw new ImageError('E_OVERLAP',
        `${run.what} (sectors ${run.first}-${run.end - 1}) overlaps ${widest.what} (sectors ${widest.first}-${widest.end - 1})`,
        { structure: run.structure, offset: run.offset });
    }
    if (!widest || run.end > widest.end) widest = run;
  }
}
