import type { ProbeInput, ProbeResult } from '@amitrans/block';
import { DiskType, FOOTER_COOKIE, FOOTER_SIZE, type VhdFooter, footerVirtualSize, parseFooter } from './footer.js';

const SUBFORMATS: Record<number, string> = {
  [DiskType.fixed]: 'fixed',
  [DiskType.dynamic]: 'dynamic',
  [DiskType.differencing]: 'differencing',
};

function hasCookie(buf: Uint8Array, at: number): boolean {
  return at >= 0 && at + 8 <= buf.length && Buffer.from(buf.subarray(at, at + 8)).toString('latin1') === FOOTER_COOKIE;
}

function describe(footer: VhdFooter | undefined): ProbeResult {
  if (!footer) return { format: 'vhd' };
  const subformat = SUBFORMATS[footer.diskType];
  return {
    format: 'vhd',
    ...(subformat === undefined ? {} : { subformat }),
    ...(footer.diskType === DiskType.differencing ? {} : { virtualSize: footerVirtualSize(footer) }),
  };
}

function tryParse(buf: Uint8Array): VhdFooter | undefined {
  try {
    return parseFooter(buf);
  } catch {
    // The cookie is there, so it is a VHD; open() will report exactly what is wrong.
    return undefined;
  }
}

/**
 * A dynamic VHD starts with a footer copy; a fixed one has nothing at the start (QEMU
 * probes it as raw), so its footer is looked for in the last 512 bytes, or the last 511
 * for pre-2004 Virtual PC images.
 */
export function probeVhd(input: ProbeInput): ProbeResult | undefined {
  const { head, tail } = input;
  if (hasCookie(head, 0) && head.length >= FOOTER_SIZE) {
    const footer = tryParse(head.subarray(0, FOOTER_SIZE));
    if (!footer || footer.diskType !== DiskType.fixed) return describe(footer);
  }
  if (input.size < 511) return undefined;
  if (tail.length >= FOOTER_SIZE && hasCookie(tail, tail.length - FOOTER_SIZE)) {
    return describe(tryParse(tail.subarray(tail.length - FOOTER_SIZE)));
  }
  if (tail.length >= 511 && hasCookie(tail, tail.length - 511)) {
    const padded = new Uint8Array(FOOTER_SIZE);
    padded.set(tail.subarray(tail.length - 511));
    return describe(tryParse(padded));
  }
  return undefined;
}
