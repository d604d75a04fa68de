import { randomUUID } from 'node:crypto';
import { checkKnownOptions, onOff, optionError, type ImageError } from '@amitrans/block';
import { VHD_EPOCH } from './footer.js';

export const VHD_WRITE_OPTIONS: Readonly<Record<string, string>> = {
  subformat: 'fixed | dynamic (default dynamic, like qemu-img)',
  force_size: 'on: keep the exact size (rounded to 512 B) with creator "qem2" and CHS 65535/16/255, as qemu-img; default rounds up to a CHS-representable size',
  azure: 'on: an Azure-ready fixed VHD: size rounded up to a whole MiB, creator "qem2" (current_size semantics)',
  uuid: 'the footer unique id (default random), for reproducible output',
  timestamp: 'creation time as Unix seconds or an ISO 8601 date (default now), for reproducible output',
};

export interface VhdWriteSettings {
  readonly subformat: 'fixed' | 'dynamic';
  readonly forceSize: boolean;
  readonly azure: boolean;
  readonly uniqueId: Uint8Array;
  /** Seconds since 2000-01-01 UTC. */
  readonly timestamp: number;
}

const bad = (detail: string): ImageError => optionError('VHD', detail);

export function parseUuid(text: string): Uint8Array {
  const hex = text.replace(/[{}-]/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw bad(`uuid=${text} is not a UUID`);
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function parseTimestamp(text: string): number {
  const unix = /^\d+$/.test(text) ? Number(text) : Date.parse(text) / 1000;
  const vhd = Math.floor(unix) - VHD_EPOCH;
  if (!Number.isFinite(unix) || vhd < 0 || vhd > 0xffffffff) {
    throw bad(`timestamp=${text}: expected Unix seconds or an ISO date between 2000 and 2136`);
  }
  return vhd;
}

export function parseVhdOptions(options: Readonly<Record<string, string>> = {}): VhdWriteSettings {
  checkKnownOptions('vhd', VHD_WRITE_OPTIONS, options);
  const azure = onOff('vhd', 'azure', options.azure);
  const forceSize = onOff('vhd', 'force_size', options.force_size);
  const sub = options.subformat ?? (azure ? 'fixed' : 'dynamic');
  if (sub !== 'fixed' && sub !== 'dynamic') throw bad(`subformat=${sub}: expected fixed or dynamic`);
  if (azure && sub !== 'fixed') throw bad('azure=on needs subformat=fixed: Azure accepts only fixed VHDs');
  return {
    subformat: sub,
    forceSize,
    azure,
    uniqueId: parseUuid(options.uuid ?? randomUUID()),
    timestamp: options.timestamp === undefined ? Math.floor(Date.now() / 1000) - VHD_EPOCH : parseTimestamp(options.timestamp),
  };
}
