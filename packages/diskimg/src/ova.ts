import { basename } from 'node:path';
import type { GuestReport, Verdict } from '@amitrans/guest';

/**
 * OVA options that follow from the inspected guest when translating: the OVF OS type
 * from the distribution and architecture, and the controller from the bus the verdict
 * chose (SATA only when the kernel can drive AHCI; IDE otherwise, which every x86 Linux
 * kernel with ata_piix boots from). The user's -o options win.
 */
export function ovaOptionsFor(report: GuestReport, verdict: Verdict, output: string, user: Readonly<Record<string, string>>): { options: Record<string, string>; notes: string[] } {
  const notes: string[] = [];
  const bus = verdict.bus;
  const controller = bus === 'sata' ? 'sata' : 'ide';
  if (user.controller === undefined && bus !== undefined && bus !== 'sata' && bus !== 'ide') {
    notes.push(`the appliance attaches the disk to an IDE controller; the guest was prepared for a ${bus} disk`);
  }
  const nic = applianceNic(report, verdict);
  if (user.nic === undefined && nic === 'virtio') {
    notes.push(`kernel ${verdict.kernel} has no e1000 driver: the appliance's network adapter is virtio-net (VirtualBox's paravirtualized adapter)`);
  }
  const name = output === '-' ? 'appliance' : basename(output).replace(/\.ova$/i, '');
  return {
    options: {
      name,
      ...(report.distro.id && report.distro.id !== 'unknown' ? { distro: report.distro.id } : {}),
      ...(report.arch !== 'unknown' ? { arch: report.arch } : {}),
      controller,
      nic,
      ...user,
    },
    notes,
  };
}

/**
 * VirtualBox's default adapter is an Intel PRO/1000 (e1000); cloud kernels (Debian's
 * cloud-amd64) build no e1000 at all but do have virtio_net, which VirtualBox also offers.
 */
export function applianceNic(report: GuestReport, verdict: Verdict): 'e1000' | 'virtio' {
  const k = report.kernels.find((x) => x.version === verdict.kernel);
  if (!k) return 'e1000';
  const has = (d: 'e1000' | 'virtio_net'): boolean => k.drivers[d] === 'builtin' || k.drivers[d] === 'module';
  return !has('e1000') && has('virtio_net') ? 'virtio' : 'e1000';
}
