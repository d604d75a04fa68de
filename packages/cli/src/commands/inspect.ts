import { inspectImage, type ImageInspection, type InspectOptions } from '@amitrans/diskimg';
import type { GuestReport, KernelReport, Verdict } from '@amitrans/guest';
import type { RemoteOptions } from '@amitrans/remote';
import { table } from '../human.js';
import { line, type CliIo } from '../io.js';

/** `asked`: the root partition, and the bootloader choices a translate would be given (its verdicts then match). */
export async function inspectCommand(file: string, asked: Pick<InspectOptions, 'partition' | 'grubDir' | 'bootloader'>, json: boolean, io: CliIo, remote: RemoteOptions = {}): Promise<void> {
  const result = await inspectImage(file, { remote, ...asked });
  if (json) {
    line(io.stdout, JSON.stringify(result, null, 2));
    return;
  }
  for (const l of renderInspection(result)) line(io.stdout, l);
}

const STATUS: Record<Verdict['status'], string> = {
  boots: 'boots as is',
  'boots-after-translation': 'boots after translation',
  'will-not-boot': 'will not boot',
};

function driverSummary(k: KernelReport): string {
  const parts: string[] = [];
  for (const d of ['virtio_blk', 'xen_blkfront', 'ata_piix', 'ahci'] as const) {
    const s = k.drivers[d];
    if (s === 'builtin') parts.push(`${d} built in`);
    else if (s === 'module') parts.push(`${d} ${k.initrdDrivers?.includes(d) ? 'in initrd' : 'module'}`);
  }
  return parts.join(', ') || 'no known disk driver';
}

export function renderInspection(r: ImageInspection): string[] {
  const g: GuestReport = r.report;
  const out: string[] = [];
  const where = r.partition === null ? `bare ${g.filesystem?.type ?? 'ext'} filesystem` : `partition ${r.partition} (${g.filesystem?.type ?? 'ext'})`;
  out.push(`${r.file}: ${g.distro.name}${g.distro.version ? ` ${g.distro.version}` : ''} (${g.distro.id}, ${g.arch}) on a ${where}`);
  const kernels = g.kernels.length
    ? g.kernels.map((k) => `${k.version}${k.xenOnly ? ' (Xen PV only)' : ''}${k.isDefault ? ' [default]' : ''}`).join(', ')
    : g.modulesWithoutKernel.length ? `none in /boot (modules for ${g.modulesWithoutKernel.join(', ')}: it used an external kernel)` : 'none';
  out.push(`kernels: ${kernels}`);
  out.push('');
  // The initrd step is what makes a will-not-boot image boot: say so on the verdict line.
  const initrdNote = (v: Verdict): string => {
    const c = v.changes.find((x) => x.startsWith('initrd: '));
    return c ? `: ${c.slice('initrd: '.length).replace(/ \(with their dependencies\).*$/, '')}` : '';
  };
  out.push(...table(g.verdicts.map((v) => [`  ${v.target}:`, `${STATUS[v.status]}${initrdNote(v)}${v.kernel ? ` (kernel ${v.kernel}, ${v.bus} disk)` : ''}${v.platforms?.length ? `: runs on ${v.platforms.join(', ')}` : ''}`])));
  for (const v of g.verdicts) {
    for (const reason of v.reasons) out.push(`    ${v.target}: ${reason}`);
    // The disk build's line says which bootloader translation installs, from where, and why.
    for (const c of v.changes) if (c.startsWith('build an MBR disk')) out.push(`    ${v.target}: ${c}`);
  }
  out.push('', 'Kernels');
  if (g.kernels.length === 0) out.push('  none');
  for (const k of g.kernels) {
    out.push(`  ${k.version}: ${k.vmlinuz}${k.initrd ? `, initrd ${k.initrd}${k.initrdFlavour ? ` (${k.initrdFlavour})` : ''}` : ', no initrd'}${k.config ? '' : ', no config'}`);
    out.push(`    ${driverSummary(k)}`);
  }
  out.push('', 'Boot configuration');
  if (g.bootConfigs.length === 0) out.push('  none');
  for (const b of g.bootConfigs) {
    out.push(`  ${b.file} (${b.kind}), default entry ${b.defaultIndex}`);
    b.entries.forEach((e, i) => out.push(`    ${i === b.defaultIndex ? '*' : ' '} ${e.title}: root ${e.root ?? '-'}, kernel ${e.kernel ?? '-'}${e.rootArg ? `, root=${e.rootArg}` : ''}${e.consoles.length ? `, console=${e.consoles.join(',')}` : ''}`));
  }
  out.push(`  pv-grub: ${g.pvgrub.hd0 ? 'hd0 finds the menu' : g.pvgrub.hd00 ? 'hd00 finds the menu' : 'no /boot/grub/menu.lst'}`);
  out.push('', 'Filesystems (/etc/fstab)');
  for (const e of g.fstab) out.push(`  ${e.spec} ${e.mountpoint} ${e.type} ${e.options.join(',')}`);
  if (g.filesystem) out.push(`  root filesystem: ${g.filesystem.type}, label "${g.filesystem.label}", UUID ${g.filesystem.uuid}, ${g.filesystem.inodeSize}-byte inodes`);
  out.push('', 'Consoles');
  out.push(`  ${g.consoles.map((c) => `${c.device} (${c.source})`).join(', ') || 'none'}`);
  out.push('', 'Other');
  if (g.modprobe.length) out.push(`  modprobe aliases: ${g.modprobe.map((a) => `${a.alias}=${a.module}`).join(', ')}`);
  if (g.network.ifcfg.length) out.push(`  network: ${g.network.ifcfg.map((f) => `${f.device} ${f.bootproto}${f.hwaddr ? ` HWADDR ${f.hwaddr}` : ''}`).join(', ')}`);
  if (g.network.persistentNetRules.length) out.push(`  persistent net rules: ${g.network.persistentNetRules.join(', ')}`);
  if (g.cloud.metadataFetches.length) out.push(`  rc.local fetches instance metadata (${g.cloud.metadataFetches.length} line${g.cloud.metadataFetches.length > 1 ? 's' : ''})`);
  out.push(`  cloud-init: ${g.cloud.cloudInit ? 'installed' : 'no'}; SELinux: ${g.selinux.mode}; GRUB legacy stage files: ${g.grubStages ? g.grubStages.dir : 'none'}`);
  out.push(`  GRUB 2 (i386-pc): ${g.grub2 ? `${g.grub2.version ?? 'version unknown'} in ${g.grub2.dir}, ${g.grub2.modules} modules` : 'none'}`);
  if (g.imageId) out.push(`  /etc/image-id: ${Object.entries(g.imageId).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (g.warnings.length) {
    out.push('', 'Warnings');
    for (const w of g.warnings) out.push(`  ${w}`);
  }
  return out;
}
