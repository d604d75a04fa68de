import { ImageError } from '@amitrans/block';
import { parseDiskDevice } from '../fstab.js';
import { TARGET_FACTS, devicePrefix, type Bus, type Target } from '../targets.js';
import type { RootBy } from './types.js';

export interface LineChange {
  line: number;
  before: string;
  after: string;
  why: string;
}

export interface TextEdit {
  text: string;
  changes: LineChange[];
}

export function rootSpec(by: RootBy, fs: { uuid: string; label: string }, device: string): string {
  if (by === 'uuid') return `UUID=${fs.uuid}`;
  if (by === 'label') {
    // The request does not fit this image: the user changes the command line (exit 2).
    if (!fs.label) throw new ImageError('E_USAGE', '--root-by label: the root filesystem has no label; use --root-by uuid or device');
    return `LABEL=${fs.label}`;
  }
  return device;
}

export interface FstabOptions {
  target: Target;
  bus: Bus;
  diskBuild: boolean;
  /** What the root entry's device becomes. */
  root: string;
  /** systemd is PID 1: mountall's `nobootwait` reaches the kernel as an unknown option. */
  systemd?: boolean;
}

/**
 * `nobootwait` is an option of Ubuntu's mountall (upstart); under systemd it is handed to
 * the filesystem, which refuses the mount ("ext3: Unknown parameter 'nobootwait'") and the
 * boot stops in emergency mode. systemd's word for it is `nofail`.
 */
function systemdOptions(opts: string): string {
  const list = opts.split(',');
  if (!list.includes('nobootwait')) return opts;
  const out = list.filter((x) => x !== 'nobootwait');
  if (!out.includes('nofail')) out.push('nofail');
  return out.join(',');
}

const LINE = /^(\s*)(\S+)(\s+)(\S+)(\s+)(\S+)(\s+)(\S+)(.*)$/;
const SHORT = /^(\s*)(\S+)(\s+)(\S+)(\s+)(\S+)\s*$/;

/**
 * Rewrite /etc/fstab for the target: the root entry names the root filesystem as asked;
 * other disk names are remapped (xvdb -> vdb, ...; on Eucalyptus the ephemeral disk is
 * sda2 and swap sda3); mounts of instance-store disks the target does not have get
 * `nofail` so the guest still boots without them. Spacing is kept.
 */
export function transformFstab(text: string, o: FstabOptions): TextEdit {
  const lines = text.split('\n');
  const changes: LineChange[] = [];
  lines.forEach((raw, i) => {
    if (/^\s*(#|$)/.test(raw)) return;
    let m = LINE.exec(raw);
    let parts: string[];
    if (m) parts = m.slice(1);
    else {
      const s = SHORT.exec(raw);
      if (!s) return;
      parts = [...s.slice(1), ' ', 'defaults', ''];
      m = s;
    }
    const [lead, spec, s1, mnt, s2, type, s3, opts, rest] = parts as [string, string, string, string, string, string, string, string, string];
    let newSpec = spec;
    let newOpts = opts;
    const why: string[] = [];
    if (mnt === '/') {
      if (spec !== o.root) {
        newSpec = o.root;
        why.push(`root names the root filesystem as ${o.root.split('=')[0]!.startsWith('/dev') ? 'the target sees it' : o.root.split('=')[0]}`);
      }
    } else {
      const dev = parseDiskDevice(spec);
      if (dev) {
        const mapped = mapOther(dev, type, o);
        if (mapped.spec !== spec) {
          newSpec = mapped.spec;
          why.push(`${spec} is ${mapped.spec} on ${o.target}`);
        }
        if (!mapped.exists && !opts.split(',').includes('nofail') && !(o.systemd && opts.split(',').includes('nobootwait'))) {
          newOpts = opts === 'defaults' ? 'defaults,nofail' : `${opts},nofail`;
          why.push(mapped.why ?? `${o.target} has no such disk: nofail so boot does not wait for it`);
        }
      }
    }
    if (o.systemd && systemdOptions(newOpts) !== newOpts) {
      newOpts = systemdOptions(newOpts);
      why.push('nobootwait is mountall\'s option; systemd hands it to the filesystem, which fails the mount: nofail says the same to systemd');
    }
    if (newSpec !== spec || newOpts !== opts) {
      const after = `${lead}${newSpec}${s1}${mnt}${s2}${type}${s3}${newOpts}${rest}`;
      changes.push({ line: i, before: raw, after, why: why.join('; ') });
      lines[i] = after;
    }
  });
  return { text: lines.join('\n'), changes };
}

function mapOther(dev: { prefix: string; disk: string; partition?: number }, type: string, o: FstabOptions): { spec: string; exists: boolean; why?: string } {
  const part = dev.partition === undefined ? '' : String(dev.partition);
  const unstable = TARGET_FACTS[o.target].unstableDiskNames;
  if (unstable) {
    // The block device mapping's name (sdb shows as xvdb); whether it is there, and under what name, depends on the instance.
    return { spec: `/dev/${unstable.otherDisks}${dev.disk}${part}`, exists: false, why: `${unstable.why}, and the instance may not have this disk: nofail so boot does not wait for it` };
  }
  if (TARGET_FACTS[o.target].vbrDisk) {
    // The Eucalyptus VBR: sda1 root, sda2 ephemeral, sda3 swap.
    if (type === 'swap') return { spec: '/dev/sda3', exists: true };
    if (dev.disk === 'b' && !part) return { spec: '/dev/sda2', exists: true };
    if (dev.disk === 'a') return { spec: `/dev/sda${part}`, exists: ['1', '2', '3'].includes(part) };
    return { spec: `/dev/sd${dev.disk}${part}`, exists: false };
  }
  const p = devicePrefix(o.target, o.bus);
  const spec = `/dev/${p}${dev.disk}${part}`;
  // The target VM has one disk: the root disk (partition 1 of a built disk, or the bare filesystem).
  const exists = dev.disk === 'a' && (o.diskBuild ? part === '1' : part === '');
  return { spec, exists };
}
