import { ImageError } from '@amitrans/block';

const GIB = 1024 ** 3;

/**
 * What decompressing one compressed input may cost, so that a bomb (100 KB of bzip2 that
 * expands to 128 GiB, a 10 MB gzip of 10 GiB of zeros) ends in a typed error instead of
 * minutes of work and a temporary file of that size:
 * - ratio: past the first `floorBytes`, output may be at most `ratio` times the compressed
 *   input. 1100 is beyond what gzip's format can reach (about 1032:1), so no gzip image is
 *   refused by it; bzip2 and xz reach 10^3..10^6 only on runs of zeros no real image holds.
 *   AMITRANS_DECOMPRESS_MAX_RATIO, floor 1 GiB.
 * - bytes: 4 TiB in all (AMITRANS_DECOMPRESS_MAX_GIB).
 * - time: one hour (AMITRANS_DECOMPRESS_SECONDS).
 */
export interface DecompressBudget {
  ratio: number;
  floorBytes: number;
  maxBytes: number;
  ms: number;
}

function setting(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

export function decompressBudget(): DecompressBudget {
  return {
    ratio: setting('AMITRANS_DECOMPRESS_MAX_RATIO', 1100),
    floorBytes: GIB,
    maxBytes: setting('AMITRANS_DECOMPRESS_MAX_GIB', 4096) * GIB,
    ms: setting('AMITRANS_DECOMPRESS_SECONDS', 3600) * 1000,
  };
}

/** Checks the output so far against the budget; throws E_TOO_LARGE naming the input and the setting. */
export class DecompressMeter {
  private readonly started = Date.now();

  constructor(
    private readonly budget: DecompressBudget,
    private readonly compressedBytes: number,
    private readonly place: { file: string; structure: string },
  ) {}

  check(outputBytes: number): void {
    const b = this.budget;
    if (outputBytes > b.maxBytes) {
      this.refuse(`expands past ${b.maxBytes / GIB} GiB, the decompression budget (AMITRANS_DECOMPRESS_MAX_GIB)`);
    }
    if (outputBytes > b.floorBytes && outputBytes > b.ratio * this.compressedBytes) {
      this.refuse(`expands more than ${b.ratio} times (${this.compressedBytes} bytes to over ${outputBytes}): a decompression bomb, or set AMITRANS_DECOMPRESS_MAX_RATIO`);
    }
    if (Date.now() - this.started > b.ms) {
      this.refuse(`took over ${b.ms / 1000} s to decompress (${outputBytes} bytes so far; AMITRANS_DECOMPRESS_SECONDS)`);
    }
  }

  private refuse(why: string): never {
    throw new ImageError('E_TOO_LARGE', why, this.place);
  }
}
