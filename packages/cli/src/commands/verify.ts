import { ImageError } from '@amitrans/block';
import { verify, type VerifyOptions, type VerifyResult } from '@amitrans/diskimg';
import type { Target } from '@amitrans/guest';
import type { DiskBus, NicModel } from '@amitrans/verify';
import { line, type CliIo } from '../io.js';
import { Progress } from '../progress.js';
import { UsageError } from '../usage.js';

export interface VerifyArgs {
  image: string;
  target?: Target | undefined;
  bus?: DiskBus | undefined;
  nic?: NicModel | undefined;
  directKernel: boolean;
  eucaBus?: 'virtio' | 'scsi' | undefined;
  kernel?: string | undefined;
  ramdisk?: string | undefined;
  expect?: string | undefined;
  ssh: boolean;
  timeout: number;
  memory: number;
  log?: string | undefined;
  json: boolean;
  progress: boolean;
}

/** Exit codes of verify: booted, did not boot, cannot verify here (no QEMU, Xen). */
export const VERIFY_EXIT = { booted: 0, failed: 1, 'not-verifiable': 3 } as const;

function expectPattern(text: string | undefined): RegExp | undefined {
  if (text === undefined) return undefined;
  try {
    return new RegExp(text);
  } catch (err) {
    throw new UsageError(`--expect ${JSON.stringify(text)}: not a regular expression (${(err as Error).message})`);
  }
}

export async function verifyCommand(a: VerifyArgs, io: CliIo, signal: AbortSignal): Promise<number> {
  const progress = new Progress(io, a.progress || (io.stderr.isTTY === true && !a.json));
  const live = !a.json && io.stderr.isTTY === true;
  const expect = expectPattern(a.expect);
  const opts: VerifyOptions = {
    signal,
    timeout: a.timeout,
    memory: a.memory,
    ssh: a.ssh,
    directKernel: a.directKernel,
    progress: (done, total) => progress.update('copy for QEMU', done, total),
    ...(live ? { onMilestone: (m) => io.stderr.write(`  ${m.seconds.toFixed(1).padStart(6)} s  ${m.name}\n`) } : {}),
    ...(a.target ? { target: a.target } : {}),
    ...(a.bus ? { bus: a.bus } : {}),
    ...(a.nic ? { nic: a.nic } : {}),
    ...(a.eucaBus ? { eucaBus: a.eucaBus } : {}),
    ...(a.kernel !== undefined ? { kernel: a.kernel } : {}),
    ...(a.ramdisk !== undefined ? { ramdisk: a.ramdisk } : {}),
    ...(expect ? { expect } : {}),
    ...(a.log ? { log: a.log } : {}),
  };
  let result: VerifyResult;
  try {
    result = await verify(a.image, opts);
  } catch (err) {
    throw err instanceof ImageError ? err.inFile(a.image) : err;
  } finally {
    progress.finish();
  }
  if (a.json) line(io.stdout, JSON.stringify(result, null, 2));
  else for (const l of renderVerify(result)) line(io.stdout, l);
  return VERIFY_EXIT[result.result];
}

export function renderVerify(r: VerifyResult): string[] {
  const out: string[] = [];
  const how = r.mode ? ` (${r.mode === 'direct-kernel' ? 'direct kernel boot' : 'disk boot'}, ${r.bus} disk, ${r.nic} NIC${r.accel ? `, ${r.accel}` : ''})` : '';
  const verdict = r.result === 'booted' ? 'booted' : r.result === 'failed' ? `did not boot: ${r.class}` : 'cannot be verified here';
  out.push(`${r.image}: ${r.target ?? 'image'}${how}: ${verdict} in ${r.seconds.toFixed(1)} s`);
  if (r.detail) out.push(`  ${r.detail}`);
  if (r.sshBanner) out.push(`  ssh: ${r.sshBanner}`);
  if (r.milestones.length) {
    out.push('', 'Milestones');
    for (const m of r.milestones) out.push(`  ${m.seconds.toFixed(1).padStart(6)} s  ${m.name.padEnd(13)} ${m.line.slice(0, 100)}`);
  }
  if (r.result === 'failed' && r.lastLines.length) {
    out.push('', 'Last console lines');
    for (const l of r.lastLines.slice(-12)) out.push(`  ${l.slice(0, 160)}`);
  }
  for (const n of r.notes) out.push(`note: ${n}`);
  if (r.log) out.push(`console log: ${r.log}`);
  return out;
}
