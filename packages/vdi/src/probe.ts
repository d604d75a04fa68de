import type { ProbeInput, ProbeResult } from '@amitrans/block';
import { ImageType, VDI_SIGNATURE } from './header.js';

const SUBFORMATS: Record<number, string> = {
  [ImageType.normal]: 'dynamic',
  [ImageType.fixed]: 'fixed',
  [ImageType.undo]: 'undo',
  [ImageType.diff]: 'differencing',
};

/** A VDI has its signature right after the 64-byte text at the start. */
export function probeVdi(input: ProbeInput): ProbeResult | undefined {
  const { head } = input;
  if (head.length < 0x48) return undefined;
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (v.getUint32(0x40, true) !== VDI_SIGNATURE) return undefined;
  if (head.length < 0x178) return { format: 'vdi' };
  const subformat = SUBFORMATS[v.getUint32(0x4c, true)];
  const size = v.getBigUint64(0x170, true);
  return {
    format: 'vdi',
    ...(subformat === undefined ? {} : { subformat }),
    ...(size <= BigInt(Number.MAX_SAFE_INTEGER) ? { virtualSize: Number(size) } : {}),
  };
}
