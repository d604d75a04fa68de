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
  const name = output === '-' ? 'appliance' : basename(output).replace(/\.ova$/i, '');
  return {
    options: {
      name,
      ...(report.distro.id && report.distro.id !== 'unknown' ? { distro: report.distro.id } : {}),
      ...(report.arch !== 'unknown' ? { arch: report.arch } : {}),
      controller,
      ...user,
    },
    notes,
  };
}
