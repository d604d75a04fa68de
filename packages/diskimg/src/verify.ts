import { access, open as openFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { FileDevice, ImageError, MaskedDevice, makeTempDir, removeTempDir } from '@amitrans/block';
import { ExtFs } from '@amitrans/extfs';
import { TARGET_FACTS, defaultEntry, extGuestFs, resolve, type Bus, type GuestReport, type Target, type Verdict } from '@amitrans/guest';
import { applianceHardware, openOva } from '@amitrans/ova';
import {
  QEMU_BINARY, QEMU_PACKAGES, bootMachine, findQemu, pickAccel,
  type Accel, type DiskBus, type Failure, type FailureClass, type Machine, type Milestone, type NicModel,
} from '@amitrans/verify';
import { writeDisk } from './convert.js';
import { driverByName } from './drivers.js';
import { writeEmiDisk } from './emi-disk.js';
import { mbrHasNoBootCode } from './hd00.js';
import { resolveOutput } from './output.js';
import { applianceNic } from './ova.js';
import { bundlePrivateKeyPath, isBundleManifest, unbundleToTemp } from './bundle.js';
import { findRoot, inspectOpened, type ImageInspection } from './inspect.js';
import { openImage, type OpenedImage } from './open.js';

/**
 * `amitrans verify`: boot an image under QEMU the way its target platform boots it, and
 * say how far it got. The image is only ever read: QEMU gets it (or a temporary copy in a
 * format QEMU reads) with snapshot=on.
 */

export type BootMode = 'disk' | 'direct-kernel';

export interface VerifyOptions {
  /** The platform to emulate; default: read off the image (OVA/VDI virtualbox, a bare filesystem eucalyptus, else kvm). */
  target?: Target;
  /** Attach the root disk on this bus instead of the target's. */
  bus?: DiskBus;
  nic?: NicModel;
  /** Boot the kernel and initrd of the image's menu.lst directly (xenserver's smoke test; any target). */
  directKernel?: boolean;
  /**
   * Boot this kernel instead of the image's own (a direct kernel boot with root=/dev/vda1,
   * or sda1 on SCSI): the EKI an EMI is registered with, as the node controller boots it.
   * A file, or its bundle manifest (opened with EUCA_PRIVATE_KEY or EC2_PRIVATE_KEY).
   */
  kernel?: string;
  /** With `kernel`: the ramdisk (the ERI), a file or its bundle manifest. */
  ramdisk?: string;
  /** Eucalyptus without USE_VIRTIO_ROOT: the root disk on an LSI SCSI controller. */
  eucaBus?: 'virtio' | 'scsi';
  /** Success is this console text instead of a login prompt. */
  expect?: RegExp;
  /** Success is an SSH banner from the guest (user-mode network, a host forward on 127.0.0.1). */
  ssh?: boolean;
  /** Seconds before giving up (default 300). */
  timeout?: number;
  /** Seconds of console silence before the kernel prints that end the boot (default 90). */
  silence?: number;
  /** Guest memory in MiB (default 768). */
  memory?: number;
  /** Keep the serial console log in this file. */
  log?: string;
  signal?: AbortSignal;
  onMilestone?: (m: Milestone) => void;
  /** Progress of preparing a temporary disk for QEMU, in bytes. */
  progress?: (done: number, total: number) => void;
}

export interface VerifyResult {
  image: string;
  target?: Target;
  mode?: BootMode;
  bus?: DiskBus;
  nic?: NicModel;
  accel?: Accel;
  /** QEMU's command line, as run. */
  command?: string[];
  result: 'booted' | 'failed' | 'not-verifiable';
  class?: FailureClass;
  detail?: string;
  milestones: Milestone[];
  lastLines: string[];
  seconds: number;
  sshBanner?: string;
  log?: string;
  notes: string[];
}

interface Plan {
  target: Target;
  mode: BootMode;
  bus: DiskBus;
  nic: NicModel;
}

export async function verify(image: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const started = performance.now();
  const seconds = (): number => Math.round((performance.now() - started) / 100) / 10;
  if (options.ramdisk !== undefined && options.kernel === undefined) throw new ImageError('E_USAGE', 'a ramdisk is booted with the kernel it belongs to: give --kernel too');
  const qemu = await findQemu();
  if (!qemu) return notVerifiable(image, options.target, `${QEMU_BINARY} is not installed (${QEMU_PACKAGES})`, seconds());
  const img = await openImage(image);
  const dir = await makeTempDir('verify');
  try {
    const inspection = await inspectOpened(img).catch((err: unknown) => {
      if (err instanceof ImageError && err.code === 'E_UNSUPPORTED') return undefined; // no guest filesystem: boot it anyway
      throw err;
    });
    const target = options.target ?? inferTarget(img, inspection);
    if (TARGET_FACTS[target].verify.mode === 'xen-pv' && !options.directKernel) {
      return notVerifiable(image, target, 'XenServer boots PV guests under Xen, which QEMU cannot emulate here; --direct-kernel runs the image\'s kernel and initrd under QEMU as a smoke test', seconds());
    }
    const plan = await planBoot(img, inspection, target, options);
    const notes: string[] = [];
    // A disk whose sector 0 has no boot code cannot boot from the BIOS: say so without booting.
    if (plan.mode === 'disk' && (await mbrHasNoBootCode(img.disk))) {
      const detail = 'sector 0 holds no boot code: the disk has no bootloader in its MBR';
      return { ...base(image, plan), result: 'failed', class: 'no-bootloader', detail, milestones: [], lastLines: [], seconds: seconds(), notes };
    }
    const machine = await prepareMachine(img, inspection, plan, dir, options, notes);
    const outcome = await bootMachine(machine, {
      qemu,
      accel: await pickAccel(),
      ...(options.expect ? { expect: options.expect } : {}),
      ...(options.ssh ? { ssh: true } : {}),
      ...(options.timeout !== undefined ? { timeoutSeconds: options.timeout } : {}),
      ...(options.silence !== undefined ? { silenceSeconds: options.silence } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.log ? { log: options.log } : {}),
      ...(options.onMilestone ? { onMilestone: options.onMilestone } : {}),
    });
    return {
      ...base(image, plan),
      accel: outcome.accel,
      command: outcome.command,
      result: outcome.booted ? 'booted' : outcome.failure?.class === 'qemu-error' ? 'not-verifiable' : 'failed',
      ...failureFields(outcome.failure),
      milestones: outcome.milestones,
      lastLines: outcome.lastLines,
      seconds: seconds(),
      ...(outcome.sshBanner ? { sshBanner: outcome.sshBanner } : {}),
      ...(options.log ? { log: options.log } : {}),
      notes,
    };
  } catch (err) {
    throw err instanceof ImageError ? err.inFile(image) : err;
  } finally {
    await img.close();
    await removeTempDir(dir);
  }
}

function base(image: string, plan: Plan): Pick<VerifyResult, 'image' | 'target' | 'mode' | 'bus' | 'nic'> {
  return { image, target: plan.target, mode: plan.mode, bus: plan.bus, nic: plan.nic };
}

function failureFields(f: Failure | undefined): Pick<VerifyResult, 'class' | 'detail'> {
  return f ? { class: f.class, detail: f.detail } : {};
}

function notVerifiable(image: string, target: Target | undefined, detail: string, seconds: number): VerifyResult {
  return { image, ...(target ? { target } : {}), result: 'not-verifiable', detail, milestones: [], lastLines: [], seconds, notes: [] };
}

/** A Xen console on the default kernel line marks an image still made for Xen. */
function bootsOnXen(r: GuestReport): boolean {
  const entry = r.bootConfigs[0] && defaultEntry(r.bootConfigs[0]);
  const consoles = entry?.consoles.map((c) => c.split(',')[0]) ?? [];
  return consoles.some((c) => c === 'hvc0' || c === 'xvc0') && !consoles.includes('ttyS0');
}

function inferTarget(img: OpenedImage, inspection: ImageInspection | undefined): Target {
  if (img.detection.driver?.platform === 'virtualbox') return 'virtualbox';
  if (inspection?.report.layout === 'bare-filesystem') return bootsOnXen(inspection.report) ? 'xenserver' : 'eucalyptus';
  return 'kvm';
}

const FROM_GUEST_BUS: Readonly<Record<Bus, DiskBus | undefined>> = { virtio: 'virtio', scsi: 'virtio-scsi', sata: 'sata', ide: 'ide', xen: undefined, nvme: 'nvme' };

async function planBoot(img: OpenedImage, inspection: ImageInspection | undefined, target: Target, o: VerifyOptions): Promise<Plan> {
  const verdict: Verdict | undefined = inspection?.report.verdicts.find((v) => v.target === target);
  const bare = inspection?.report.layout === 'bare-filesystem';
  const facts = TARGET_FACTS[target].verify;
  const direct = o.directKernel === true || o.kernel !== undefined || facts.mode !== 'disk';
  if (!direct && bare) {
    throw new ImageError('E_UNSUPPORTED', `a bare filesystem has no boot sector: ${target} boots disks (use --target eucalyptus, or --direct-kernel)`, { structure: 'disk' });
  }
  let bus: DiskBus = facts.bus;
  let nic: NicModel = facts.nic;
  if (target === 'virtualbox') {
    // An appliance says which controller and NIC it has; a bare disk gets what the verdict chose.
    const hw = img.detection.driver?.describesGuest ? await ovaHardware(img.file) : {};
    bus = hw.controller === 'sata' ? 'sata' : hw.controller === 'ide' ? 'ide' : FROM_GUEST_BUS[verdict?.bus ?? facts.bus] ?? facts.bus;
    nic = hw.nic !== undefined ? (/virtio/i.test(hw.nic) ? 'virtio' : 'e1000') : verdict && inspection ? applianceNic(inspection.report, verdict) : facts.nic;
  } else if (facts.mode !== 'disk' && o.eucaBus === 'scsi') {
    bus = 'lsi-scsi';
  }
  return { target, mode: direct ? 'direct-kernel' : 'disk', bus: o.bus ?? bus, nic: o.nic ?? nic };
}

async function ovaHardware(path: string): Promise<ReturnType<typeof applianceHardware>> {
  const file = await FileDevice.open(path);
  try {
    const archive = await openOva(file, { verifyManifest: false });
    await archive.close();
    return applianceHardware(archive.ovf);
  } finally {
    await file.close();
  }
}

async function prepareMachine(
  img: OpenedImage, inspection: ImageInspection | undefined, plan: Plan, dir: string, o: VerifyOptions, notes: string[],
): Promise<Machine> {
  const memoryMiB = o.memory ?? 768;
  if (plan.mode === 'disk') {
    return { drive: await driveFor(img, dir, o, notes), bus: plan.bus, nic: plan.nic, memoryMiB };
  }
  if (!inspection) throw new ImageError('E_UNSUPPORTED', 'no ext2/3/4 filesystem with a kernel: nothing to boot directly', { structure: 'disk' });
  const root = await findRoot(img);
  const ext = await ExtFs.open(root.device);
  try {
    const boot = o.kernel !== undefined ? await givenKernel(o.kernel, o.ramdisk, dir) : await kernelFiles(ext, inspection.report, dir);
    const from = o.kernel !== undefined ? 'the kernel and ramdisk given (as the registered EKI and ERI), root=/dev/vda1' : 'the kernel and initrd of menu.lst';
    let drive: Machine['drive'];
    if (root.partition === undefined) {
      // The node controller's disk: the EMI in partition 1, ephemeral and swap after it.
      const path = join(dir, 'emi-disk.raw');
      const disk = await writeEmiDisk(new MaskedDevice(root.device, await ext.freeRanges()), path, o.signal);
      notes.push(`booted as the node controller does: ${from}, the EMI in partition 1 of a disk with ephemeral (2) and swap (3)`, ...disk.notes);
      drive = { path, format: 'raw' };
    } else {
      drive = await driveFor(img, dir, o, notes);
    }
    const rootArg = boot.root ?? (plan.bus === 'virtio' ? '/dev/vda1' : '/dev/sda1');
    return {
      drive, bus: plan.bus, nic: plan.nic, memoryMiB,
      kernel: { path: boot.kernel, ...(boot.initrd ? { initrd: boot.initrd } : {}), append: `root=${rootArg} console=ttyS0` },
      ...(TARGET_FACTS[plan.target].verify.rtcLocaltime ? { rtcLocaltime: true } : {}),
    };
  } finally {
    await ext.close();
  }
}

/** The image itself when QEMU reads its format, else a sparse raw copy in `dir`. */
async function driveFor(img: OpenedImage, dir: string, o: VerifyOptions, notes: string[]): Promise<Machine['drive']> {
  const format = driverByName(img.detection.format)?.qemuFormat;
  if (format && !img.compression) return { path: img.file, format };
  const path = join(dir, 'disk.raw');
  await writeDisk(img.disk, resolveOutput(path, 'raw'), { ...(o.signal ? { signal: o.signal } : {}), ...(o.progress ? { progress: o.progress } : {}) });
  notes.push(`QEMU reads no ${img.compression ?? img.detection.format}: the disk was copied to a sparse raw temporary`);
  return { path, format: 'raw' };
}

/** The kernel and ramdisk given for the boot (an EKI and an ERI): files QEMU reads, or bundles unbundled into `dir`. */
async function givenKernel(kernel: string, ramdisk: string | undefined, dir: string): Promise<{ kernel: string; initrd?: string; root?: string }> {
  const k = await bootFile(kernel, join(dir, 'given-kernel'));
  const initrd = ramdisk !== undefined ? await bootFile(ramdisk, join(dir, 'given-ramdisk')) : undefined;
  return { kernel: k, ...(initrd ? { initrd } : {}) };
}

async function bootFile(path: string, to: string): Promise<string> {
  if (await isBundleManifest(path)) {
    const temp = await unbundleToTemp(path, bundlePrivateKeyPath());
    try {
      await rename(temp.path, to);
    } finally {
      await temp.remove();
    }
    return to;
  }
  // QEMU reads a plain file itself: say now, not in its log, when it cannot.
  await access(path).catch((err: unknown) => {
    throw new ImageError('E_IO', `cannot read the kernel or ramdisk: ${(err as Error).message}`, { file: path, cause: err });
  });
  return path;
}

/** Copy the default entry's kernel and initrd out of the guest (symlinks followed inside it). */
async function kernelFiles(ext: ExtFs, report: GuestReport, dir: string): Promise<{ kernel: string; initrd?: string; root?: string }> {
  const cfg = report.bootConfigs[0];
  const entry = cfg && defaultEntry(cfg);
  if (!entry?.kernel) throw new ImageError('E_UNSUPPORTED', 'no boot entry with a kernel in /boot/grub/menu.lst or grub.cfg: nothing to boot directly', { structure: cfg?.file ?? 'boot configuration' });
  const kernel = await copyOut(ext, entry.kernel, join(dir, 'kernel'));
  const initrd = entry.initrd ? await copyOut(ext, entry.initrd, join(dir, 'initrd')) : undefined;
  return { kernel, ...(initrd ? { initrd } : {}), ...(entry.rootArg ? { root: entry.rootArg } : {}) };
}

const COPY_CHUNK = 4 * 2 ** 20;

async function copyOut(ext: ExtFs, guestPath: string, to: string): Promise<string> {
  const fs = extGuestFs(ext);
  // A kernel line names the file as seen from the boot partition or the root: try both.
  const found = (await resolve(fs, guestPath)) ?? (await resolve(fs, `/boot${guestPath}`));
  if (!found || found.stat.type !== 'file') throw new ImageError('E_UNSUPPORTED', `${guestPath} named by the boot entry is not a file in the guest`, { structure: 'boot configuration' });
  const out = await openFile(to, 'w');
  try {
    for (let pos = 0; pos < found.stat.size; pos += COPY_CHUNK) {
      const chunk = await ext.read(found.path, pos, Math.min(COPY_CHUNK, found.stat.size - pos));
      await out.write(chunk, 0, chunk.length, pos);
    }
  } finally {
    await out.close();
  }
  return to;
}

