import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ConcatDevice,
  CowOverlay,
  ImageError,
  MaskedDevice,
  MemoryDevice,
  SliceDevice,
  ZeroDevice,
  type BlockDevice,
} from '@amitrans/block';
import { ExtFs } from '@amitrans/extfs';
import { checkFilesystemSupport, grubBootSectors, type StageFiles } from '@amitrans/grub';
import {
  CLEAN_OPERATIONS,
  DEFAULT_CLEAN,
  STEP_NAMES,
  TARGETS,
  extGuestFs,
  inspectGuest,
  randomSalt,
  runSteps,
  sha512Crypt,
  verdictFor,
  type Bus,
  type Change,
  type CleanOperation,
  type GuestReport,
  type RootBy,
  type StepName,
  type Target,
  type TranslatePlan,
  type Verdict,
} from '@amitrans/guest';
import { createMbr, readPartitionTable } from '@amitrans/mbr';
import { writeDisk, type OutputSummary } from './convert.js';
import { resolveOutput } from './output.js';
import { findRoot } from './inspect.js';
import { readInitrdSummary } from './initrd.js';
import { openImage } from './open.js';
import { ovaOptionsFor } from './ova.js';

export interface TranslateOptions {
  target: Target;
  /** Output format (raw, qcow2, vmdk, vhd, vdi); default from the output name. */
  format?: string;
  /** Output format options, qemu-img -o style. */
  formatOptions?: Record<string, string>;
  /** Disk bus on the target (kvm: virtio, scsi, ide; virtualbox: sata, ide); default: the best the kernel supports. */
  bus?: Bus;
  /** How fstab and root= name the root filesystem. Default uuid. */
  rootBy?: RootBy;
  only?: StepName[];
  skip?: StepName[];
  /** Report the changes without writing an output. */
  dryRun?: boolean;
  /** Disk size in bytes for a disk build (default: filesystem + alignment). */
  size?: number;
  /** Partition start: 2048 sectors (modern, default) or 63 (legacy). */
  align?: 'modern' | 'legacy';
  /** A directory with stage1, stage2 and e2fs_stage1_5 (instead of the guest's own). */
  grubDir?: string;
  /** password:P | file:F | random | disabled */
  rootPassword?: string;
  sshPasswordAuth?: 'yes' | 'no';
  selinux?: 'relabel' | 'permissive';
  clean?: CleanOperation[];
  /** /etc/image-id fields for Eucalyptus (and `timestamp` for reproducible ones). */
  eucalyptus?: Record<string, string>;
  /** Inspect this partition of a partitioned input (1-based). */
  partition?: number;
  sha256?: boolean;
  progress?: (stage: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface TranslateResult extends OutputSummary {
  target: Target;
  layout: 'disk' | 'filesystem' | 'partitioned';
  verdict: Verdict;
  changes: Change[];
  /** A random root password that was set (printed once). */
  rootPassword?: string;
  report: GuestReport;
}

const DISK_TARGETS: readonly Target[] = ['kvm', 'virtualbox'];

async function rootPasswordHash(selector: string): Promise<{ hash: string; shown?: string }> {
  const i = selector.indexOf(':');
  const kind = i < 0 ? selector : selector.slice(0, i);
  const value = i < 0 ? '' : selector.slice(i + 1);
  switch (kind) {
    case 'password':
      return { hash: sha512Crypt(value, randomSalt()) };
    case 'file': {
      const first = (await readFile(value, 'utf8')).split('\n')[0] ?? '';
      return { hash: sha512Crypt(first, randomSalt()) };
    }
    case 'random': {
      const alphabet = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
      const pw = [...(await import('node:crypto')).randomBytes(16)].map((b) => alphabet[b % alphabet.length]).join('');
      return { hash: sha512Crypt(pw, randomSalt()), shown: pw };
    }
    case 'disabled':
      return { hash: '*' };
    default:
      throw new ImageError('E_UNSUPPORTED', `--root-password ${selector}: use password:P, file:F, random or disabled`);
  }
}

async function stageFilesFrom(ext: ExtFs, report: GuestReport, grubDir: string | undefined): Promise<{ stages: StageFiles; from: string }> {
  if (grubDir) {
    const read = async (name: string): Promise<Uint8Array> => {
      for (const dir of [grubDir, join(grubDir, 'x86_64-pc'), join(grubDir, 'i386-pc')]) {
        try {
          return await readFile(join(dir, name));
        } catch {
          // try the next layout
        }
      }
      throw new ImageError('E_UNSUPPORTED', `--grub-dir ${grubDir} has no ${name}`);
    };
    return { stages: { stage1: await read('stage1'), stage1_5: await read('e2fs_stage1_5'), stage2: await read('stage2') }, from: grubDir };
  }
  const s = report.grubStages;
  if (!s || !s.e2fsStage1_5) {
    throw new ImageError('E_UNSUPPORTED',
      'no GRUB legacy stage files (stage1, stage2, e2fs_stage1_5) in /boot/grub, /usr/lib/grub/*-pc or /usr/share/grub/*: give them with --grub-dir (Debian package grub-legacy has them)');
  }
  return { stages: { stage1: await ext.readFile(s.stage1), stage1_5: await ext.readFile(s.e2fsStage1_5), stage2: await ext.readFile(s.stage2) }, from: s.dir };
}

/** Refuse what is wrong in the request itself before any work (the CLI's table checks these too). */
function checkTranslateOptions(o: TranslateOptions): void {
  const names = (what: string, given: readonly string[] | undefined, known: readonly string[]): void => {
    const bad = (given ?? []).filter((n) => !known.includes(n));
    if (bad.length) throw new ImageError('E_USAGE', `unknown ${what} ${bad.map((b) => `'${b}'`).join(', ')} (known: ${known.join(', ')})`);
  };
  if (!(TARGETS as readonly string[]).includes(o.target)) names('target', [o.target], TARGETS);
  names('step', o.only, STEP_NAMES);
  names('step', o.skip, STEP_NAMES);
  names('clean operation', o.clean, CLEAN_OPERATIONS);
  for (const [key, v] of [['size', o.size], ['partition', o.partition]] as const) {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1)) throw new ImageError('E_USAGE', `${key} ${String(v)}: expected a whole number from 1`);
  }
}

/**
 * Translate an AMI (a bare root filesystem, or a partitioned disk) for another hypervisor:
 * guest edits as small named steps through a copy-on-write overlay, a bootable MBR disk with
 * GRUB legacy for kvm and virtualbox, and any writable container as output. The input is
 * never written.
 */
export async function translate(input: string, output: string, options: TranslateOptions): Promise<TranslateResult> {
  const started = performance.now();
  checkTranslateOptions(options);
  const prepared = resolveOutput(output, options.format, options.formatOptions);
  const driver = prepared.driver;
  await prepared.destination.guard([input]);
  const img = await openImage(input);
  try {
    await prepared.destination.guard(img.files);
    const root = await findRoot(img, options.partition);
    const overlay = new CowOverlay(root.device);
    const ext = await ExtFs.open(overlay, { writable: true });
    try {
      const gfs = extGuestFs(ext);
      const report = await inspectGuest(gfs, {
        layout: root.partition === undefined ? 'bare-filesystem' : 'partitioned',
        filesystem: { type: root.facts.type, label: root.facts.label, uuid: root.facts.uuid, inodeSize: root.facts.inodeSize },
        readInitrd: (p, size) => readInitrdSummary(ext, p, size),
      });
      const diskBuild = root.partition === undefined && DISK_TARGETS.includes(options.target);
      const verdict = verdictFor(report, options.target, options.bus ? { bus: options.bus } : {});
      if (verdict.status === 'will-not-boot' && !(diskBuild && options.grubDir && verdict.kernel)) {
        throw new ImageError('E_UNSUPPORTED', `${input} will not boot on ${options.target}: ${verdict.reasons.join('; ')}`);
      }
      const password = options.rootPassword ? await rootPasswordHash(options.rootPassword) : undefined;
      const plan: TranslatePlan = {
        target: options.target,
        bus: verdict.bus!,
        kernel: verdict.kernel!,
        diskBuild,
        rootBy: options.rootBy ?? 'uuid',
        rootFs: { uuid: root.facts.uuid, label: root.facts.label, type: root.facts.type },
        ...(root.partition !== undefined ? { grubRoot: `(hd0,${root.partition - 1})` } : {}),
        ...(password ? { rootPasswordHash: password.hash } : {}),
        ...(options.sshPasswordAuth ? { sshPasswordAuth: options.sshPasswordAuth } : {}),
        selinux: options.selinux ?? 'relabel',
        clean: options.clean ?? DEFAULT_CLEAN,
        ...(options.eucalyptus ? { eucalyptus: options.eucalyptus } : {}),
      };
      const dryRun = options.dryRun ?? false;
      const changes = await runSteps({ fs: gfs, report, plan, dryRun }, {
        ...(options.only ? { only: options.only } : {}),
        ...(options.skip ? { skip: options.skip } : {}),
      });

      // The bootable disk: GRUB's stage files must be readable in /boot/grub of the filesystem.
      let stages: StageFiles | undefined;
      if (diskBuild) {
        const found = await stageFilesFrom(ext, report, options.grubDir);
        stages = found.stages;
        checkFilesystemSupport(stages.stage1_5, root.facts);
        // Stage files the guest keeps in /boot/grub are already where GRUB will read them.
        const inPlace = !options.grubDir && found.from === '/boot/grub';
        for (const [name, bytes] of inPlace ? [] : [['stage1', stages.stage1], ['stage2', stages.stage2!], ['e2fs_stage1_5', stages.stage1_5]] as const) {
          const path = `/boot/grub/${name}`;
          const have = await ext.exists(path) ? await ext.readFile(path) : undefined;
          if (have && Buffer.compare(have, bytes) === 0) continue;
          if (!dryRun) {
            if (!(await ext.exists('/boot/grub'))) await ext.mkdir('/boot/grub', { recursive: true });
            await ext.writeFile(path, bytes, { mode: 0o644 });
          }
          changes.push({ step: 'bootloader', file: path, action: have ? 'edit' : 'create', why: `GRUB legacy stage file (from ${found.from}) for the disk build` });
        }
      }
      const result: TranslateResult = {
        input,
        output,
        target: options.target,
        format: driver.name,
        layout: diskBuild ? 'disk' : root.partition !== undefined ? 'partitioned' : 'filesystem',
        verdict,
        changes,
        ...(password?.shown ? { rootPassword: password.shown } : {}),
        report,
        virtualSize: 0,
        bytesRead: 0,
        bytesWritten: 0,
        seconds: 0,
        notes: [],
      };
      if (dryRun) {
        result.seconds = (performance.now() - started) / 1000;
        return result;
      }
      await ext.flush();
      // Free blocks become holes: stale deleted data never reaches the output.
      const fsDevice = new MaskedDevice(overlay, await ext.freeRanges());
      let disk: BlockDevice = fsDevice;
      if (diskBuild) {
        disk = await bootableDisk(fsDevice, stages!, root.facts.uuid, options);
      } else if (root.partition !== undefined) {
        const table = await readPartitionTable(img.disk);
        const p = table.partitions.find((x) => x.index === root.partition)!;
        disk = new ConcatDevice([
          new SliceDevice(img.disk, 0, p.start),
          fsDevice,
          new SliceDevice(img.disk, p.start + p.size, img.disk.size - p.start - p.size),
        ]);
      }
      // An appliance describes the guest: its OS type and the controller the verdict chose.
      const ova = driver.describesGuest ? ovaOptionsFor(report, verdict, output, prepared.options) : undefined;
      result.notes.push(...(ova?.notes ?? []));
      if (prepared.compression) result.notes.push(`the output is ${prepared.compression}-compressed`);
      const written = await writeDisk(disk, prepared, {
        ...(ova ? { writerOptions: ova.options } : {}),
        progress: (done, total) => options.progress?.('write', done, total),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.sha256 ? { sha256: true } : {}),
      });
      result.virtualSize = written.virtualSize ?? disk.size;
      result.bytesRead = written.bytesRead;
      result.bytesWritten = written.bytesWritten;
      result.notes.push(...(written.notes ?? []));
      if (written.sha256) result.sha256 = written.sha256;
      result.seconds = (performance.now() - started) / 1000;
      return result;
    } finally {
      await ext.close();
    }
  } catch (err) {
    throw err instanceof ImageError ? err.inFile(input) : err;
  } finally {
    await img.close();
  }
}

/** MBR + embedded GRUB stage 1.5 + the filesystem in partition 1 (+ zeros up to --size). */
async function bootableDisk(fs: BlockDevice, stages: StageFiles, uuid: string, options: TranslateOptions): Promise<BlockDevice> {
  const startSector = options.align === 'legacy' ? 63 : 2048;
  const start = startSector * 512;
  const minimum = start + fs.size;
  const size = options.size ?? minimum;
  if (size < minimum) throw new ImageError('E_OUT_OF_RANGE', `--size ${size} is smaller than the filesystem plus its alignment (${minimum} bytes)`);
  // A disk signature derived from the filesystem UUID: the same input gives the same disk.
  const signature = Number.parseInt(uuid.replace(/-/g, '').slice(0, 8), 16) >>> 0 || 1;
  const mbr = createMbr({ diskSize: size, align: options.align ?? 'modern', partitionSize: size - start, type: 0x83, bootable: true, diskSignature: signature });
  const { mbr: sector0, embedded } = grubBootSectors(mbr.sector, stages, { slice: 0 });
  const head = new MemoryDevice(start);
  head.bytes.set(sector0, 0);
  head.bytes.set(embedded, 512);
  return new ConcatDevice([head, fs, new ZeroDevice(size - minimum)]);
}
