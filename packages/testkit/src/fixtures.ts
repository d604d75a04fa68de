/** Fixtures built from Debian packages, and a QEMU boot helper. */
import { spawn } from 'node:child_process';
import { mkdir, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { debRoot, requireTools, run } from './index.js';

const REPO = new URL('../../../', import.meta.url).pathname;

export interface DebianAmiOptions {
  inodeSize?: number;
  grubStages?: boolean;
  /** grub-pc-bin's i386-pc files in /usr/lib/grub/i386-pc, no stage files, menu.lst -> grub.cfg. */
  grub2?: boolean;
  /** ext4 with extents, 64bit and 256-byte inodes. */
  ext4?: boolean;
  size?: string;
  /** A directory whose tree is copied into the root as well. */
  extra?: string;
  /** Ship this initrd (e.g. from buildFixtureInitrd) instead of the script's busybox one. */
  initrd?: string;
  /** The kernel package under .tmp/debs (default linux-image-cloud-amd64). */
  kernel?: string;
  /** Ship only these modules and their dependencies. */
  modules?: string[];
}

/** Build scripts/make-debian-ami.sh's PV AMI at `path` (needs the unpacked Debian packages). */
export async function buildDebianAmi(ctx: { skip: (note?: string) => void }, path: string, o: DebianAmiOptions = {}): Promise<void> {
  for (const p of [o.kernel ?? 'linux-image-cloud-amd64', 'busybox-static', 'grub-legacy']) debRoot(ctx, p);
  const args = [`${REPO}scripts/make-debian-ami.sh`, path];
  if (o.inodeSize) args.push('--inode-size', String(o.inodeSize));
  if (o.grubStages === false) args.push('--no-grub-stages');
  if (o.grub2) args.push('--grub2');
  if (o.ext4) args.push('--ext4');
  if (o.size) args.push('--size', o.size);
  if (o.extra) args.push('--extra', o.extra);
  if (o.initrd) args.push('--initrd', o.initrd);
  if (o.kernel) args.push('--kernel', o.kernel);
  if (o.modules) args.push('--modules', o.modules.join(' '));
  await run('bash', args);
}

/**
 * An initrd of the Debian cloud kernel made by Debian's own builder (scripts/make-fixture-initrd.sh)
 * with only `modules` (as an AMI's initrd: xen-blkfront, no virtio), cached under .tmp/initrd-fixtures.
 */
export async function buildFixtureInitrd(ctx: { skip: (note?: string) => void }, kind: 'initramfs-tools' | 'dracut', modules: string[], kernel = 'linux-image-cloud-amd64'): Promise<string> {
  requireTools(ctx, kind === 'dracut' ? 'dracut' : 'mkinitramfs', 'unshare', 'depmod');
  debRoot(ctx, kernel);
  const tag = kernel === 'linux-image-cloud-amd64' ? '' : `${kernel}-`;
  const out = `${REPO}.tmp/initrd-fixtures/${tag}${kind}-${modules.join('+')}.img`;
  if (await stat(out).then(() => true, () => false)) return out;
  await mkdir(dirname(out), { recursive: true });
  const part = `${out}.part-${process.pid}`;
  await run('env', [`KERNEL_DEB=${kernel}`, 'bash', `${REPO}scripts/make-fixture-initrd.sh`, kind, part, ...modules]);
  await rename(part, out);
  return out;
}

/**
 * A PV AMI whose kernel has nvme and ext4 as modules (Debian's generic linux-image-amd64)
 * and whose initramfs-tools initrd has only xen-blkfront and ext4, as a Xen-era AMI's has:
 * the ec2-hvm translation must add nvme to it. Built once under .tmp/ec2-generic and
 * shared; never written (tests check its sha256).
 */
export async function genericKernelAmi(ctx: { skip: (note?: string) => void }): Promise<string> {
  requireTools(ctx, 'mkfs.ext3', 'depmod', 'modprobe', 'cpio');
  const out = `${REPO}.tmp/ec2-generic/ami.img`;
  if (await stat(out).then(() => true, () => false)) return out;
  const kernel = 'linux-image-amd64';
  const initrd = await buildFixtureInitrd(ctx, 'initramfs-tools', ['xen-blkfront', 'ext4'], kernel);
  await mkdir(dirname(out), { recursive: true });
  const part = `${out}.part-${process.pid}`;
  await buildDebianAmi(ctx, part, {
    kernel,
    initrd,
    modules: ['nvme', 'ena', 'xen-blkfront', 'xen-netfront', 'ext4', 'virtio_pci', 'virtio_blk', 'virtio_scsi', 'virtio_net', 'ata_piix', 'sd_mod', 'e1000'],
  });
  await rename(part, out);
  return out;
}

export interface BootResult {
  /** Everything QEMU printed on the serial console. */
  output: string;
  seconds: number;
  timedOut: boolean;
}

/**
 * Boot a disk image under QEMU (TCG, no KVM), serial console on stdout, no reboot, and
 * wait until the guest powers off or `timeoutMs` passes.
 */
export function qemuBoot(disk: string, o: { format: string; iface: 'virtio' | 'ide' | 'scsi'; timeoutMs?: number; memoryMiB?: number }): Promise<BootResult> {
  const started = performance.now();
  const drive = o.iface === 'scsi'
    ? ['-device', 'virtio-scsi-pci,id=scsi0', '-drive', `file=${disk},format=${o.format},if=none,id=d0`, '-device', 'scsi-hd,drive=d0,bus=scsi0.0']
    : ['-drive', `file=${disk},format=${o.format},if=${o.iface}`];
  const child = spawn('qemu-system-x86_64', [
    '-accel', 'tcg', '-m', String(o.memoryMiB ?? 512), '-display', 'none', '-serial', 'stdio', '-monitor', 'none',
    '-no-reboot', '-nodefaults', '-vga', 'none', ...drive,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString('latin1')));
  child.stderr.on('data', (d: Buffer) => (output += d.toString('latin1')));
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ output, seconds: (performance.now() - started) / 1000, timedOut });
    });
  });
}

/**
 * The realistic Debian AMI of scripts/make-debian-real-ami.sh (debootstrap, systemd, udev,
 * ifupdown on eth0, openssh with host keys, the guest's own initramfs-tools initrd), built
 * once per machine under .tmp/debian-real and shared by every test file. Never written:
 * tests translate or verify it and check its sha256 afterwards.
 */
export async function realDebianAmi(ctx: { skip: (note?: string) => void }): Promise<string> {
  requireTools(ctx, 'debootstrap', 'mkfs.ext3', 'flock', 'openssl', 'sha256sum');
  debRoot(ctx, 'grub-legacy');
  const out = `${REPO}.tmp/debian-real/ami.img`;
  await run('bash', [`${REPO}scripts/make-debian-real-ami.sh`, out]);
  return out;
}

/**
 * The realistic Debian AMI with its initrd rebuilt as an AMI's is, xen-blkfront only (no
 * virtio, no ata): by the guest's own mkinitramfs with MODULES=list, or by Debian's dracut
 * --no-hostonly (scripts/make-debian-real-initrd-ami.sh). Cached under .tmp/debian-real-initrd.
 */
export async function realDebianInitrdAmi(ctx: { skip: (note?: string) => void }, kind: 'initramfs-tools' | 'dracut'): Promise<string> {
  requireTools(ctx, 'debugfs', 'unshare', 'chroot', ...(kind === 'dracut' ? ['dracut'] : []));
  const ami = await realDebianAmi(ctx);
  const out = `${REPO}.tmp/debian-real-initrd/${kind}.img`;
  await run('bash', [`${REPO}scripts/make-debian-real-initrd-ami.sh`, kind, ami, out]);
  return out;
}
