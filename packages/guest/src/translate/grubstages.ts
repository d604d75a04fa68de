import { resolve } from '../fs.js';
import type { StepContext } from './steps.js';
import type { Change } from './types.js';

/** GRUB legacy's stage files as a disk build embeds them, and where they were read. */
export interface GrubStageSource {
  stage1: Uint8Array;
  stage2: Uint8Array;
  e2fs_stage1_5: Uint8Array;
  /** --grub-dir, or the guest directory that held them (/boot/grub, /usr/lib/grub/x86_64-pc, ...). */
  from: string;
}

/** What the step touches of a step context: the filesystem, and whether to write to it. */
type GuestWrite = Pick<StepContext, 'fs' | 'dryRun'>;

const STAGE_DIR = '/boot/grub';
const STAGE_NAMES = ['stage1', 'stage2', 'e2fs_stage1_5'] as const;

/**
 * The bootloader step's part for a disk build with GRUB legacy: stage 1.5 in the disk's
 * gap reads stage2 from /boot/grub, so the stage files go there (stage1 and stage 1.5 too,
 * as grub-install leaves them, for a later grub-install inside the guest). Files already
 * equal are left alone, and a guest that keeps its own in /boot/grub needs nothing.
 */
export async function installGrubStages(ctx: GuestWrite, source: GrubStageSource, fromGuest: boolean): Promise<Change[]> {
  if (fromGuest && source.from === STAGE_DIR) return [];
  const changes: Change[] = [];
  for (const name of STAGE_NAMES) {
    const path = `${STAGE_DIR}/${name}`;
    const bytes = source[name];
    const have = await currentBytes(ctx, path);
    if (have && Buffer.compare(have, bytes) === 0) continue;
    if (!ctx.dryRun) {
      if (!(await resolve(ctx.fs, STAGE_DIR))) await ctx.fs.mkdir(STAGE_DIR, { recursive: true });
      await ctx.fs.writeFile(path, bytes, { mode: 0o644 });
    }
    changes.push({ step: 'bootloader', file: path, action: have ? 'edit' : 'create', why: `GRUB legacy stage file (from ${source.from}) for the disk build` });
  }
  return changes;
}

async function currentBytes(ctx: GuestWrite, path: string): Promise<Uint8Array | undefined> {
  const r = await resolve(ctx.fs, path);
  if (r?.stat.type !== 'file') return undefined;
  return ctx.fs.read(r.path, 0, r.stat.size);
}
