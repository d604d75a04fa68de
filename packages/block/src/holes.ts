import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Range } from './device.js';
import { trackChild } from './cleanup.js';

/**
 * Where a sparse file's data lies, found with lseek(SEEK_DATA / SEEK_HOLE) so that its holes
 * are never read: a 1 TiB file holding a fresh ext4 is a few hundred MiB of data and the
 * rest holes, and reading the holes to find their zeros is what took minutes. Node has no
 * lseek, so a small python3 child (on most hosts, and in every Debian-based image we build
 * on) walks the file it is handed as its stdin; SEEK_DATA works on ext4, xfs, btrfs, tmpfs
 * and others, and where a filesystem lacks it the kernel reports the whole file as data.
 * When python3 is missing or fails the answer is undefined and the file is read as before.
 */

/** The walk is given this long before the file is read instead. */
const SEEK_TIMEOUT_MS = 60_000;

/** At most this many data ranges are kept (16 bytes each); past it the rest of the file counts as data. */
export const MAX_DATA_RANGES = 1 << 20;

/**
 * Holes smaller than this (st_blocks says how much of the file is unallocated) are read:
 * starting python3 costs tens of milliseconds, reading 64 MiB of holes about as much.
 */
export const MIN_HOLE_BYTES = 64 * 1024 * 1024;

/**
 * The interpreter: AMITRANS_PYTHON, else the system's /usr/bin/python3, else python3 on the
 * PATH. The system one first because a version manager's shim on the PATH (pyenv's is a
 * bash script that execs pyenv) takes 0.3 s to 1 s to start, longer than the whole map.
 */
function python(): string {
  return process.env.AMITRANS_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

/** The python3 program: the data ranges of its stdin as "start end" lines, then "end". */
const SEEK_SCRIPT = `
import errno, os, sys
fd = 0
size = os.fstat(fd).st_size
at = 0
out = []
while at < size:
    try:
        start = os.lseek(fd, at, os.SEEK_DATA)
    except OSError as e:
        if e.errno == errno.ENXIO:
            break
        raise
    stop = min(size, os.lseek(fd, start, os.SEEK_HOLE))
    out.append("%d %d\\n" % (start, stop))
    if len(out) >= 4096:
        sys.stdout.write("".join(out)); out = []
    at = stop
out.append("end\\n")
sys.stdout.write("".join(out))
`;

/**
 * The data ranges of the open file `fd` of `size` bytes (sorted, non-overlapping), or
 * undefined when they cannot be had without reading (no python3, no lseek support, an
 * error). Every byte outside them is a hole and reads as zeros.
 */
export function seekDataRanges(fd: number, size: number, maxRanges = MAX_DATA_RANGES): Promise<Range[] | undefined> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(python(), ['-I', '-S', '-c', SEEK_SCRIPT], { stdio: [fd, 'pipe', 'ignore'] });
    } catch {
      resolve(undefined);
      return;
    }
    const stdout = child.stdout;
    if (!stdout) return resolve(undefined);
    trackChild(child);
    const ranges: Range[] = [];
    let tail = '';
    let ended = false;
    let capped = false;
    let bad = false;
    const take = (line: string): void => {
      if (line === 'end') {
        ended = true;
        return;
      }
      const [a, b] = line.split(' ').map(Number) as [number, number];
      const last = ranges[ranges.length - 1];
      // Anything unexpected makes the whole answer unusable: a range wrongly taken for a
      // hole would lose data, whereas no map only costs reading.
      if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || a < 0 || b <= a || (last && a < last.offset + last.length)) {
        bad = true;
        return;
      }
      // The file's size as this process saw it bounds the device; data past it is not ours.
      if (a >= size) return;
      if (ranges.length < maxRanges) ranges.push({ offset: a, length: Math.min(b, size) - a });
      else {
        // Over the budget: the rest of the file counts as data (read, as without a map).
        capped = true;
        if (last) ranges[ranges.length - 1] = { offset: last.offset, length: size - last.offset };
        child.kill('SIGKILL');
      }
    };
    stdout.setEncoding('latin1');
    stdout.on('data', (chunk: string) => {
      if (capped || bad) return;
      const lines = (tail + chunk).split('\n');
      tail = lines.pop()!;
      for (const line of lines) if (!capped && !bad) take(line);
    });
    // A filesystem that stalls the walk (a hung network mount) costs the map, not the run.
    const timer = setTimeout(() => child.kill('SIGKILL'), SEEK_TIMEOUT_MS).unref();
    child.on('error', () => resolve(undefined));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(!bad && (capped || (code === 0 && ended)) ? ranges : undefined);
    });
  });
}
