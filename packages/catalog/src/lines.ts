import { isAscii } from 'node:buffer';
import type { Warn } from './image.js';

/** Longer lines are skipped with a warning: no line is held whole beyond this. */
export const MAX_LINE = 64 * 1024;

/** A line as `text.slice(start, end)`, without its newline (or a trailing CR); sliced only if needed. */
export type OnLine = (text: string, start: number, end: number, no: number) => void;

/**
 * Split a byte stream into lines, chunk by chunk, without ever holding more than MAX_LINE
 * bytes of one: a 1 GB line costs no more memory than a short one (it is skipped with a
 * warning). Each chunk is decoded once, up to its last newline (a newline byte is never
 * inside a UTF-8 sequence), and lines are handed over as ranges of that text: a listing
 * has millions of lines, and a string or a promise per line would cost more than parsing.
 */
export class LineSplitter {
  /** The bytes after the last newline so far (the line in progress). */
  private carry: Buffer = Buffer.alloc(0);
  private tooLong = false;
  /** The number of the next line to complete. */
  private no = 1;

  constructor(private readonly file: string, private readonly warn: Warn) {}

  push(chunk: Uint8Array, onLine: OnLine): void {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const last = buf.lastIndexOf(0x0a);
    if (last < 0) return this.keep(buf);
    if (this.carry.length || this.tooLong) {
      // The line in progress ends in this chunk.
      const first = buf.indexOf(0x0a);
      this.keep(buf.subarray(0, first));
      this.finishCarried(onLine);
      buf = buf.subarray(first + 1);
      this.lines(buf, buf.lastIndexOf(0x0a), onLine);
    } else {
      this.lines(buf, last, onLine);
    }
    this.keep(buf.subarray(buf.lastIndexOf(0x0a) + 1));
  }

  end(onLine: OnLine): void {
    if (this.carry.length || this.tooLong) this.finishCarried(onLine);
  }

  /** The lines of `buf[0..last]` (last: the index of its last newline, or -1). */
  private lines(buf: Buffer, last: number, onLine: OnLine): void {
    if (last < 0) return;
    // Pure ASCII (the usual case) decodes several times faster as latin1, with the same result.
    const text = buf.toString(isAscii(buf.subarray(0, last + 1)) ? 'latin1' : 'utf8', 0, last + 1);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      this.emit(text, start, nl, onLine);
      start = nl + 1;
    }
  }

  private emit(text: string, start: number, end: number, onLine: OnLine): void {
    const no = this.no++;
    // Characters, not bytes, past the chunk decoder: close enough for a bound on memory.
    if (end - start > MAX_LINE) {
      this.warn({ file: this.file, line: no, message: `longer than ${MAX_LINE} bytes, skipped` });
      return;
    }
    onLine(text, start, end > start && text.charCodeAt(end - 1) === 0x0d ? end - 1 : end, no);
  }

  private keep(piece: Buffer): void {
    if (this.tooLong || piece.length === 0) return;
    if (this.carry.length + piece.length > MAX_LINE) {
      this.tooLong = true;
      this.carry = Buffer.alloc(0);
      return;
    }
    this.carry = Buffer.concat([this.carry, piece]); // a copy: the stream may reuse its chunk
  }

  private finishCarried(onLine: OnLine): void {
    if (this.tooLong) {
      this.warn({ file: this.file, line: this.no++, message: `longer than ${MAX_LINE} bytes, skipped` });
    } else {
      const text = this.carry.toString('utf8');
      this.emit(text, 0, text.length, onLine);
    }
    this.carry = Buffer.alloc(0);
    this.tooLong = false;
  }
}
