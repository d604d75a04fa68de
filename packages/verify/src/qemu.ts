import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

/**
 * The QEMU machine a target boots on, as data, and the command line that makes it. QEMU is
 * an optional tool: found on PATH (or at AMITRANS_QEMU), never bundled.
 */

/** How the root disk is attached. */
export type DiskBus = 'virtio' | 'virtio-scsi' | 'lsi-scsi' | 'ide' | 'sata' | 'nvme';
export type NicModel = 'virtio' | 'e1000';
export type Accel = 'kvm' | 'tcg';

export interface Machine {
  /** The disk image QEMU opens, in a format QEMU reads; never written (snapshot=on). */
  drive: { path: string; format: string };
  bus: DiskBus;
  nic: NicModel;
  /** Direct kernel boot (as the Eucalyptus node controller and pv-grub do), else the disk's MBR. */
  kernel?: { path: string; initrd?: string; append: string };
  memoryMiB: number;
  /** The Eucalyptus node controller keeps the guest clock in local time. */
  rtcLocaltime?: boolean;
}

export const QEMU_BINARY = 'qemu-system-x86_64';
export const QEMU_PACKAGES = 'Debian/Ubuntu: apt-get install qemu-system-x86; Fedora/RHEL: dnf install qemu-system-x86 (or qemu-kvm)';

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where qemu-system-x86_64 is, or undefined when it is not installed. */
export async function findQemu(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (env.AMITRANS_QEMU) return (await executable(env.AMITRANS_QEMU)) ? env.AMITRANS_QEMU : undefined;
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  // RHEL puts its KVM build outside PATH.
  for (const dir of [...dirs, '/usr/libexec']) {
    for (const name of dir === '/usr/libexec' ? ['qemu-kvm'] : [QEMU_BINARY]) {
      const p = join(dir, name);
      if (await executable(p)) return p;
    }
  }
  return undefined;
}

/** KVM when /dev/kvm can be opened for reading and writing; otherwise QEMU's emulator. */
export async function pickAccel(): Promise<Accel> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
    return 'kvm';
  } catch {
    return 'tcg';
  }
}

function diskArgs(m: Machine): string[] {
  // snapshot=on: the guest's writes go to a temporary overlay QEMU deletes; the image is
  // opened read-only.
  const drive = ['-drive', `file=${escapeOpt(m.drive.path)},format=${m.drive.format},if=none,id=root,snapshot=on`];
  switch (m.bus) {
    case 'virtio': return [...drive, '-device', 'virtio-blk-pci,drive=root'];
    case 'virtio-scsi': return [...drive, '-device', 'virtio-scsi-pci,id=scsi0', '-device', 'scsi-hd,drive=root,bus=scsi0.0'];
    case 'lsi-scsi': return [...drive, '-device', 'lsi53c895a,id=scsi0', '-device', 'scsi-hd,drive=root,bus=scsi0.0'];
    case 'ide': return [...drive, '-device', 'ide-hd,drive=root,bus=ide.0'];
    case 'sata': return [...drive, '-device', 'ahci,id=ahci0', '-device', 'ide-hd,drive=root,bus=ahci0.0'];
    case 'nvme': return [...drive, '-device', 'nvme,serial=amitrans0,drive=root'];
  }
}

/** QEMU's option syntax doubles a comma inside a value. */
function escapeOpt(value: string): string {
  return value.replace(/,/g, ',,');
}

/** The whole QEMU command line (without the binary). `sshPort` forwards 127.0.0.1:port to the guest's 22. */
export function qemuArgs(m: Machine, accel: Accel, sshPort?: number): string[] {
  const model = m.nic === 'virtio' ? 'virtio-net-pci' : 'e1000';
  // restrict=on: the guest reaches nothing outside (DHCP and DNS from QEMU still work);
  // the forward to its ssh port is the one way in.
  const nic = `user,model=${model},restrict=on${sshPort ? `,hostfwd=tcp:127.0.0.1:${sshPort}-:22` : ''}`;
  return [
    '-machine', `pc,accel=${accel}`,
    ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(m.memoryMiB),
    '-smp', '1',
    '-display', 'none', '-vga', 'none', '-nodefaults', '-no-reboot',
    '-serial', 'stdio', '-monitor', 'none',
    ...(m.rtcLocaltime ? ['-rtc', 'base=localtime'] : []),
    ...diskArgs(m),
    '-nic', nic,
    ...(m.kernel ? ['-kernel', m.kernel.path, ...(m.kernel.initrd ? ['-initrd', m.kernel.initrd] : []), '-append', m.kernel.append] : []),
  ];
}
