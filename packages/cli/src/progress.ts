import { humanSize } from './human.js';
import type { CliIo } from './io.js';

/**
 * A one-line progress meter on stderr: done/total, rate and ETA, redrawn at most every
 * 200 ms. Silent unless stderr is a TTY (or forced with -p).
 */
export class Progress {
  private readonly started = performance.now();
  private last = 0;
  private shown = false;

  constructor(
    private readonly io: CliIo,
    private readonly enabled: boolean,
  ) {}

  update(label: string, done: number, total: number): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.last < 200 && done < total) return;
    this.last = now;
    const secs = (now - this.started) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const parts = [label];
    if (total > 0) parts.push(`${((100 * done) / total).toFixed(1).padStart(5)}%`, `${humanSize(done)} / ${humanSize(total)}`);
    else parts.push(humanSize(done));
    if (rate > 0) parts.push(`${humanSize(rate)}/s`);
    if (total > 0 && rate > 0 && done < total) parts.push(`ETA ${clock((total - done) / rate)}`);
    this.io.stderr.write(`\r\x1b[K${parts.join('  ')}`);
    this.shown = true;
  }

  finish(): void {
    if (this.shown) this.io.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}

function clock(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
