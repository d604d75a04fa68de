import type { Writable } from 'node:stream';

/** Where a command writes; tests pass buffers, the binary passes the process streams. */
export interface CliIo {
  stdout: Pick<Writable, 'write'> & { isTTY?: boolean };
  stderr: Pick<Writable, 'write'> & { isTTY?: boolean };
  /** What `-` reads (catalog); the process's stdin when absent. */
  stdin?: AsyncIterable<Buffer>;
}

export function line(out: CliIo['stdout'], text = ''): void {
  out.write(`${text}\n`);
}
