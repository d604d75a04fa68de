import { randomUUID } from 'node:crypto';
import { choiceOption, onOffOption, optionError, readOptions, type ImageError, type OptionTable } from '@amitrans/block';
import { VHD_EPOCH } from './footer.js';

/** The -o keys of a VHD output: the driver's table, read by the resolver and by parseVhdOptions. */
export const VHD_WRITE_OPTIONS = {
  subformat: choiceOption('fixed | dynamic (default dynamic, like qemu-img)', ['fixed', 'dynamic']),
  force_size: onOffOption('on: keep the exact size (rounded to 512 B) with creator "qem2" and CHS 65535/16/255, as qemu-img; default rounds up to a CHS-representable size', false),
  azure: onOffOption('on: an Azure-ready fixed VHD: size rounded up to a whole MiB, creator "qem2" (current_size semantics)', false),
  uuid: { help: 'the footer unique id (default random), for reproducible output', parse: readUuid, expected: 'a UUID', default: () => readUuid(randomUUID())! },
  timestamp: {
    help: 'creation time as Unix seconds or an ISO 8601 date (default now), for reproducible output',
    parse: readTimestamp,
    expected: 'Unix seconds or an ISO date between 2000 and 2136',
    default: () => Math.floor(Date.now() / 1000) - VHD_EPOCH,
  },
} satisfies OptionTable;

export interface VhdWriteSettings {
  readonly subformat: 'fixed' | 'dynamic';
  readonly forceSize: boolean;
  readonly azure: boolean;
  readonly uniqueId: Uint8Array;
  /** Seconds since 2000-01-01 UTC. */
  readonly timestamp: number;
}

const bad = (detail: string): ImageError => optionError('VHD', detail);

function readUuid(text: string): Uint8Array | undefined {
  const hex = text.replace(/[{}-]/g, '');
  return /^[0-9a-fA-F]{32}$/.test(hex) ? Uint8Array.from(Buffer.from(hex, 'hex')) : undefined;
}

/** Seconds since 2000-01-01 UTC from Unix seconds or an ISO date; undefined outside the footer's range. */
function readTimestamp(text: string): number | undefined {
  const unix = /^\d+$/.test(text) ? Number(text) : Date.parse(text) / 1000;
  const vhd = Math.floor(unix) - VHD_EPOCH;
  return Number.isFinite(unix) && vhd >= 0 && vhd <= 0xffffffff ? vhd : undefined;
}

export function parseVhdOptions(options: Readonly<Record<string, string>> = {}): VhdWriteSettings {
  const o = readOptions('vhd', VHD_WRITE_OPTIONS, options);
  const sub = o.subformat ?? (o.azure ? 'fixed' : 'dynamic');
  if (o.azure && sub !== 'fixed') throw bad('azure=on needs subformat=fixed: Azure accepts only fixed VHDs');
  return { subformat: sub, forceSize: o.force_size, azure: o.azure, uniqueId: o.uuid, timestamp: o.timestamp };
}
