import { TransferMeter } from '@amitrans/remote';
import { humanSize } from './human.js';
import type { CliIo } from './io.js';

/**
 * A one-line progress meter on stderr: the stage's done/total, rate and ETA, and for a
 * command with remote inputs or outputs the bytes downloaded and uploaded with their
 * rates; redrawn at most every 200 ms. Silent unless stderr is a TTY (or forced with -p).
 */
export class Progress {
  private readonly started = performance.now();
  private last = 0;
  private shown = false;
  private stage: { label: string; done: number; total: number } | undefined;
  private transfers: TransferMeter | undefined;

  constructor(
    private readonly io: CliIo,
    private readonly enabled: boolean,
  ) {}

  update(label: string, done: number, total: number): void {
    this.stage = { label, done, total };
    this.draw(total > 0 && done >= total);
  }

  /** A meter for the command's remote options: what it counts is drawn on the same line. */
  meter(): TransferMeter {
    let seen = '';
    // The first bytes each way are shown at once: the line says a transfer has started.
    this.transfers ??= new TransferMeter((m) => {
      const now = `${m.downloaded > 0}${m.uploaded > 0}`;
      this.draw(now !== seen);
      seen = now;
    });
    return this.transfers;
  }

  finish(): void {
    if (this.shown) this.io.stderr.write('\r\x1b[K');
    this.shown = false;
  }

  private draw(force: boolean): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.last < 200 && !force) return;
    this.last = now;
    const secs = (now - this.started) / 1000;
    const parts = [...(this.stage ? stageParts(this.stage, secs) : []), ...(this.transfers ? transferParts(this.transfers, secs) : [])];
    if (parts.length === 0) return;
    this.io.stderr.write(`\r\x1b[K${parts.join('  ')}`);
    this.shown = true;
  }
}

function stageParts(s: { label: string; done: number; total: number }, secs: number): string[] {
  const rate = secs > 0 ? s.done / secs : 0;
  const parts = [s.label];
  if (s.total > 0) parts.push(`${((100 * s.done) / s.total).toFixed(1).padStart(5)}%`, `${humanSize(s.done)} / ${humanSize(s.total)}`);
  else parts.push(humanSize(s.done));
  if (rate > 0) parts.push(`${humanSize(rate)}/s`);
  if (s.total > 0 && rate > 0 && s.done < s.total) parts.push(`ETA ${clock((s.total - s.done) / rate)}`);
  return parts;
}

/** "download 220 MiB of 2.0 GiB, 110 MiB/s": the total is the objects' size (holes are never fetched). */
function transferParts(m: TransferMeter, secs: number): string[] {
  const parts: string[] = [];
  const rate = (n: number): string => (secs > 0 && n > 0 ? `, ${humanSize(n / secs)}/s` : '');
  if (m.downloadTotal > 0 || m.downloaded > 0) parts.push(`| download ${humanSize(m.downloaded)}${m.downloadTotal > 0 ? ` of ${humanSize(m.downloadTotal)}` : ''}${rate(m.downloaded)}`);
  if (m.uploaded > 0 || m.uploadTotal > 0) parts.push(`| upload ${humanSize(m.uploaded)}${m.uploadTotal > 0 ? ` of ${humanSize(m.uploadTotal)}` : ''}${rate(m.uploaded)}`);
  return parts;
}

function clock(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
