import type { LineChange, TextEdit } from './fstab.js';

const BLOCK = /^(xenblk|xen[-_]blkfront|xen[-_]vbd|virtio[-_]blk|virtio[-_]scsi|ata[-_]piix|ahci|sym53c8xx|mptscsih|mptspi)$/;
const NET = /^(xennet|xen[-_]netfront|xen[-_]vnif|virtio[-_]net|e1000e?|8139cp|8139too|pcnet32)$/;

/**
 * modprobe.conf / modprobe.d: `alias scsi_hostadapter* <disk driver>` and `alias ethN <nic
 * driver>` name the target's drivers (old initrd builders and network scripts read them).
 */
export function transformModprobe(text: string, want: { block: string; net: string }): TextEdit {
  const lines = text.split('\n');
  const changes: LineChange[] = [];
  lines.forEach((raw, i) => {
    const m = /^(\s*alias\s+)(\S+)(\s+)(\S+)(.*)$/.exec(raw);
    if (!m) return;
    const [, lead, name, sp, mod, rest] = m as unknown as [string, string, string, string, string, string];
    let next = mod;
    if (/^scsi_hostadapter\d*$/.test(name) && BLOCK.test(mod)) next = want.block;
    else if (/^eth\d+$/.test(name) && NET.test(mod)) next = want.net;
    if (next === mod) return;
    const after = `${lead}${name}${sp}${next}${rest}`;
    changes.push({ line: i, before: raw, after, why: `${mod} is not the target's ${/^eth/.test(name) ? 'network' : 'disk'} driver` });
    lines[i] = after;
  });
  return { text: lines.join('\n'), changes };
}
