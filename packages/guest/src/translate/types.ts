import type { GuestFs } from '../fs.js';
import type { Bus, Target } from '../targets.js';

/** What a translation step needs beyond reading: every write lands in a copy-on-write overlay. */
export interface WritableGuestFs extends GuestFs {
  writeFile(path: string, data: Uint8Array | string, options?: { mode?: number; uid?: number; gid?: number }): Promise<void>;
  unlink(path: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  mkdir(path: string, options?: { recursive?: boolean; mode?: number }): Promise<void>;
}

export const STEP_NAMES = ['fstab', 'bootloader', 'consoles', 'modules', 'initrd', 'network', 'eucalyptus', 'xenserver', 'selinux', 'clean'] as const;
export type StepName = (typeof STEP_NAMES)[number];

/** One thing a step changed, with its reason: the change report is a list of these. */
export interface Change {
  step: StepName;
  file: string;
  /** skip: a file the step should have edited and did not (too large): the user checks it. */
  action: 'edit' | 'create' | 'delete' | 'truncate' | 'symlink' | 'skip';
  /** Lines removed (edit/delete) and added (edit/create), for the report. */
  before?: string[];
  after?: string[];
  why: string;
}

export type RootBy = 'uuid' | 'label' | 'device';

export const CLEAN_OPERATIONS = [
  'bash-history',
  'zsh-history',
  'logfiles',
  'ssh-hostkeys',
  'machine-id',
  'udev-persistent-net',
  'package-manager-cache',
  'tmp-files',
  'cloud-init',
  'dhcp-client-state',
  'ssh-authorized-keys',
] as const;
export type CleanOperation = (typeof CLEAN_OPERATIONS)[number];
/** authorized_keys only when asked: removing them can lock the user out. */
export const DEFAULT_CLEAN: readonly CleanOperation[] = CLEAN_OPERATIONS.filter((o) => o !== 'ssh-authorized-keys');

export interface TranslatePlan {
  target: Target;
  bus: Bus;
  /** The kernel to boot (a version from the inspection report). */
  kernel: string;
  /** The output is a partitioned disk whose partition 1 holds the filesystem (a disk build). */
  diskBuild: boolean;
  rootBy: RootBy;
  /** The root filesystem's own identity. */
  rootFs: { uuid: string; label: string; type: string };
  /** For a partitioned input: the GRUB root of the boot partition, e.g. "(hd0,1)". */
  grubRoot?: string;
  rootPassword?: string;
  /** Crypted hash for /etc/shadow, made by the caller from rootPassword. */
  rootPasswordHash?: string;
  sshPasswordAuth?: 'yes' | 'no';
  selinux: 'relabel' | 'permissive';
  clean: readonly CleanOperation[];
  eucalyptus?: Record<string, string>;
  /** More modules for the initrd step to add (--initrd-add), beyond the target's drivers. */
  initrdAdd?: readonly string[];
}

/**
 * One change per file and action: when a later stage redoes what an earlier one did (the
 * GRUB 2 install re-points the grub.conf link the bootloader step made), the report keeps
 * the first entry's place and lines removed, and the last one's result and reason.
 */
export function mergeChanges(changes: readonly Change[]): Change[] {
  const out: Change[] = [];
  const at = new Map<string, number>();
  for (const c of changes) {
    const key = `${c.action}\0${c.file}`;
    const i = at.get(key);
    if (i === undefined) {
      at.set(key, out.length);
      out.push(c);
      continue;
    }
    const first = out[i]!;
    out[i] = { ...c, step: first.step, ...(first.before ? { before: first.before } : {}) };
  }
  return out;
}
