import { view } from '@amitrans/block';
import { SECTOR } from './header.js';

/** streamOptimized markers: a grain marker has size != 0, a metadata marker size 0 and a type. */
export const MARKER_EOS = 0;
export const MARKER_GT = 1;
export const MARKER_GD = 2;
export const MARKER_FOOTER = 3;

/** Bytes before a grain's compressed data: u64 LBA (sectors), u32 compressed size. */
export const GRAIN_MARKER_BYTES = 12;

export interface GrainMarker {
  lba: number;
  size: number;
}

export function parseGrainMarker(buf: Uint8Array): GrainMarker {
  const dv = view(buf);
  return { lba: Number(dv.getBigUint64(0, true)), size: dv.getUint32(8, true) };
}

/** A grain marker followed by its compressed data, padded to whole sectors. */
export function serializeGrain(lba: number, data: Uint8Array): Uint8Array {
  const total = Math.ceil((GRAIN_MARKER_BYTES + data.length) / SECTOR) * SECTOR;
  const buf = new Uint8Array(total);
  const dv = view(buf);
  dv.setBigUint64(0, BigInt(lba), true);
  dv.setUint32(8, data.length, true);
  buf.set(data, GRAIN_MARKER_BYTES);
  return buf;
}

/** A metadata marker sector: numSectors of metadata follow (VirtualBox's convention). */
export function serializeMetadataMarker(type: number, numSectors: number): Uint8Array {
  const buf = new Uint8Array(SECTOR);
  const dv = view(buf);
  dv.setBigUint64(0, BigInt(numSectors), true);
  dv.setUint32(8, 0, true);
  dv.setUint32(12, type, true);
  return buf;
}

export function parseMetadataMarker(buf: Uint8Array): { numSectors: number; size: number; type: number } {
  const dv = view(buf);
  return { numSectors: Number(dv.getBigUint64(0, true)), size: dv.getUint32(8, true), type: dv.getUint32(12, true) };
}
