import { displayName, type RemoteOptions } from '@amitrans/remote';
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
import { checkFilesystemSupport, grub2BootSectors, grubBootSectors, type StageFiles } from '@amitrans/grub';
import {
  CLEAN_OPERATIONS,
  chooseBootloader,
  DEFAULT_CLEAN,
  STEP_NAMES,
  TARGETS,
  TARGET_FACTS,
  extGuestFs,
  inspectGuest,
  mergeChanges,
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
  type BootloaderChoice,
  type BootloaderKind,
  type BootloaderOptions,
} from '@amitrans/guest';
import { createMbr, readPartitionTable } from '@amitrans/mbr';
import { bundleTranslation, type TranslateBundleOptions, type TranslateBundleResult } from './bundle-translate.js';
import { writeDisk, type OutputSummary } from './convert.js';
import { resolveOutput } from './output.js';
import { findRoot } from './inspect.js';
import { grubDirKind, hostGrub2Dir, prepareGrub2, HOST_GRUB2_DIRS } from './grub2.js';
import { readInitrdSummary } from './initrd.js';
import { openImage } from './open.js';
import { metered } from './network.js';
import { DISK_TARGETS, bootHead, mbrHasNoBootCode, withMbrVerdict } from './hd00.js';
import { ovaOptionsFor } from './ova.js';

export interface TranslateOptions {
  target: Target;
  /** How s3:// and http(s):// inputs and outputs are reached. */
  remote?: RemoteOptions;
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
  /** A directory with GRUB legacy's stage1, stage2 and e2fs_stage1_5, or GRUB 2's i386-pc files (instead of the guest's own). */
  grubDir?: string;
  /** Install this bootloader or fail (default: the guest's GRUB legacy when it can read the filesystem, else GRUB 2). */
  bootloader?: BootloaderKind;
  /** Host directories searched for GRUB 2 i386-pc files when the guest has none (default HOST_GRUB2_DIRS). */
  hostGrubDirs?: readonly string[];
  /** password:P | file:F | random | disabled */
  rootPassword?: string;
  sshPasswordAuth?: 'yes' | 'no';
  selinux?: 'relabel' | 'permissive';
  clean?: CleanOperation[];
  /** /etc/image-id fields for Eucalyptus (and `timestamp` for reproducible ones). */
  eucalyptus?: Record<string, string>;
  /** Inspect this partition of a partitioned input (1-based). */
  partition?: number;
  /** Credentials and names for `-O bundle` (eucalyptus): the EMI, EKI and ERI bundles. */
  bundle?: TranslateBundleOptions;
  /** More modules for the initrd step to add (names as modprobe takes them). */
  initrdAdd?: string[];
  /** ec2-hvm: write the image even when it runs only on Xen HVM types (no NVMe or no ENA driver). */
  allowXenHvmOnly?: boolean;
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
  /** With -O bundle: the EMI, EKI and ERI bundles and the register commands. */
  bundle?: TranslateBundleResult;
  /** For a disk build: which bootloader was installed, from where, and why. */
  bootloader?: BootloaderChoice;
  /** Commands that import the output into the target platform (ec2-hvm: the AWS CLI's). */
  commands?: string[];
}

/** Boot code for the disk build: GRUB legacy's stage files, or GRUB 2's boot.img and core.img. */
type BootCode = ({ kind: 'grub-legacy'; stages: StageFiles } | { kind: 'grub2'; boot: Uint8Array; core: Uint8Array }) & { choice?: BootloaderChoice };

interface BootContext {
  ext: ExtFs;
  report: GuestReport;
  plan: TranslatePlan;
  choice: BootloaderChoice | undefined;
  grubDir: string | undefined;
  facts: { inodeSize: number; features: readonly string[] };
}


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
  if (o.bootloader !== undefined) names('bootloader', [o.bootloader], ['grub-legacy', 'grub2']);
  names('step', o.only, STEP_NAMES);
  names('step', o.skip, STEP_NAMES);
  names('clean operation', o.clean, CLEAN_OPERATIONS);
  const unstable = TARGET_FACTS[o.target].unstableDiskNames;
  if (unstable && o.rootBy === 'device') throw new ImageError('E_USAGE', `--root-by device: on ${o.target} ${unstable.why}; use --root-by uuid or label`);
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
  const prepared = resolveTargetOutput(output, options);
  const driver = prepared.driver;
  // A bundle (-O bundle, or a .manifest.xml output) is for Eucalyptus, and needs its certificate and account.
  if (prepared.bundle && (options.target !== 'eucalyptus' || !options.bundle)) {
    throw new ImageError('E_USAGE', '-O bundle is for -t eucalyptus, with the cloud certificate and account id (--ec2cert, --user)');
  }
  await prepared.destination.guard([input]);
  const net = metered(options.remote, input, output);
  const img = await openImage(input, { remote: net.remote });
  try {
    await prepared.destination.guard(img.files);
    const root = await findRoot(img, options.partition);
    const overlay = new CowOverlay(root.device);
    const ext = await ExtFs.open(overlay, { writable: true });
    try {
      const bootOptions = await bootloaderOptions(options);
      const gfs = extGuestFs(ext);
      const report = await inspectGuest(gfs, {
        layout: root.partition === undefined ? 'bare-filesystem' : 'partitioned',
        filesystem: { type: root.facts.type, label: root.facts.label, uuid: root.facts.uuid, inodeSize: root.facts.inodeSize, features: root.facts.features },
        readInitrd: (p, size) => readInitrdSummary(ext, p, size),
        bootloader: bootOptions,
      });
      const diskTarget = DISK_TARGETS.includes(options.target);
      const diskBuild = root.partition === undefined && diskTarget;
      // A partitioned AMI for Xen or Eucalyptus: the output is its root filesystem alone.
      const fsOnly = root.partition !== undefined && !diskTarget;
      // A partitioned AMI on a disk target: GRUB legacy into the MBR when it has no boot code (hd00) or when asked.
      const mbrInstall = root.partition !== undefined && diskTarget && (options.grubDir !== undefined || (await mbrHasNoBootCode(img.disk)));
      // Without the initrd step (--skip initrd, or --only without it) only what the initrd already has counts.
      const inject = !(options.skip?.includes('initrd') || (options.only !== undefined && !options.only.includes('initrd')));
      let verdict = verdictFor(report, options.target, { ...(options.bus ? { bus: options.bus } : {}), bootloader: bootOptions, inject });
      if (mbrInstall) verdict = withMbrVerdict(verdict, report, root.partition!);
      if (verdict.status === 'will-not-boot' && !(diskBuild && options.grubDir && verdict.kernel)) {
        throw new ImageError('E_UNSUPPORTED', `will not boot on ${options.target}: ${verdict.reasons.join('; ')}`);
      }
      checkPlatforms(verdict, options);
      const password = options.rootPassword ? await rootPasswordHash(options.rootPassword) : undefined;
      const plan: TranslatePlan = {
        target: options.target,
        bus: verdict.bus!,
        kernel: verdict.kernel!,
        diskBuild,
        rootBy: options.rootBy ?? 'uuid',
        rootFs: { uuid: root.facts.uuid, label: root.facts.label, type: root.facts.type },
        ...(root.partition !== undefined ? { grubRoot: fsOnly ? '(hd0)' : `(hd0,${root.partition - 1})` } : {}),
        ...(password ? { rootPasswordHash: password.hash } : {}),
        ...(options.sshPasswordAuth ? { sshPasswordAuth: options.sshPasswordAuth } : {}),
        selinux: options.selinux ?? 'relabel',
        clean: options.clean ?? DEFAULT_CLEAN,
        ...(options.eucalyptus ? { eucalyptus: options.eucalyptus } : {}),
        ...(options.initrdAdd?.length ? { initrdAdd: options.initrdAdd } : {}),
      };
      // Every edit goes to the in-memory overlay, so --dry-run makes them all too and only
      // skips the write: later stages (GRUB 2 re-linking menu.lst, grub.conf) see what the
      // earlier ones did, and the report is the run's by construction.
      const dryRun = options.dryRun ?? false;
      const changes = await runSteps({ fs: gfs, report, plan, dryRun: false }, {
        ...(options.only ? { only: options.only } : {}),
        ...(options.skip ? { skip: options.skip } : {}),
      });

      // The bootable disk: GRUB's files must be readable in /boot/grub (or /boot/grub2) of the filesystem.
      let code: BootCode | undefined;
      if (diskBuild) {
        const picked = chooseBootloader(report, bootOptions);
        const boot = await diskBootCode({ ext, report, plan, choice: picked.kind ? picked : undefined, grubDir: options.grubDir, facts: root.facts });
        code = boot.code;
        changes.push(...boot.changes);
      } else if (mbrInstall) {
        const boot = await diskBootCode({ ext, report, plan, choice: undefined, grubDir: options.grubDir, facts: root.facts });
        code = boot.code;
        changes.push(...boot.changes.filter((c) => !c.file.startsWith('(disk')));
        changes.push({ step: 'bootloader', file: '(MBR)', action: 'edit', why: `GRUB legacy stage 1 in sector 0 and stage 1.5 after it, for partition ${root.partition}: ${options.grubDir ? 'asked for with --grub-dir' : 'sector 0 had no boot code (pv-grub hd00 layout)'}` });
      }
      const result: TranslateResult = {
        input: img.file,
        output: displayName(output),
        target: options.target,
        format: prepared.bundle ? 'bundle' : driver.name,
        layout: diskBuild ? 'disk' : root.partition !== undefined && !fsOnly ? 'partitioned' : 'filesystem',
        verdict,
        changes: mergeChanges(changes),
        ...(password?.shown ? { rootPassword: password.shown } : {}),
        report,
        ...(code?.choice ? { bootloader: code.choice } : {}),
        ...importCommands(input, output, driver.name, report, verdict),
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
        disk = await bootableDisk(fsDevice, code!, root.facts.uuid, options);
      } else if (root.partition !== undefined && !fsOnly) {
        disk = await partitionedDisk(img.disk, root.partition, fsDevice, code?.kind === 'grub-legacy' ? code.stages : undefined);
      }
      // An appliance describes the guest: its OS type and the controller the verdict chose.
      if (prepared.bundle) {
        const b = prepared.bundle;
        result.bundle = await bundleTranslation(gfs, fsDevice, report, verdict.kernel!, input, b.location, { ...options.bundle!, prefix: options.bundle!.prefix ?? b.prefix },
          options.progress, options.signal);
        result.output = result.bundle.emi.manifest;
        result.virtualSize = fsDevice.size;
        result.bytesRead = result.bundle.emi.bytesRead;
        result.bytesWritten = result.bundle.emi.bundledSize + result.bundle.eki.bundledSize + result.bundle.eri.bundledSize;
        result.seconds = (performance.now() - started) / 1000;
        return result;
      }
      const ova = driver.describesGuest ? ovaOptionsFor(report, verdict, output, prepared.options) : undefined;
      result.notes.push(...(ova?.notes ?? []));
      if (prepared.compression) result.notes.push(`the output is ${prepared.compression}-compressed`);
      const written = await writeDisk(disk, prepared, {
        ...(ova ? { writerOptions: ova.options } : {}),
        progress: (done, total) => options.progress?.('write', done, total),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.sha256 ? { sha256: true } : {}),
        remote: net.remote,
      });
      Object.assign(result, net.summary());
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

/**
 * The output as the target's import takes it: only its formats, with the options it needs
 * (ec2-hvm: VMDK streamOptimized), uncompressed.
 */
function resolveTargetOutput(output: string, options: TranslateOptions): ReturnType<typeof resolveOutput> {
  const rule = TARGET_FACTS[options.target].outputs;
  const first = resolveOutput(output, options.format, options.formatOptions);
  if (!rule) return first;
  const name = first.driver.name;
  if (!rule.formats.includes(name) || first.compression) {
    throw new ImageError('E_USAGE', `${options.target} output: ${first.compression ? `${first.compression}-compressed ${name}` : name} is not taken: ${rule.why} (use -O ${rule.formats.join(', -O ')})`);
  }
  const wanted = rule.options[name] ?? {};
  const given = options.formatOptions ?? {};
  for (const [key, value] of Object.entries(wanted)) {
    if (given[key] !== undefined && given[key] !== value) throw new ImageError('E_USAGE', `${options.target} output: -o ${key}=${given[key]} is not taken: ${rule.why}`);
  }
  return Object.keys(wanted).length ? resolveOutput(output, options.format, { ...wanted, ...given }) : first;
}

/** A target with several kinds of machine: refuse an image that misses the best one unless asked. */
function checkPlatforms(verdict: Verdict, options: TranslateOptions): void {
  const platforms = TARGET_FACTS[options.target].platforms;
  if (!platforms || verdict.platforms?.includes(platforms[0]!.label) || options.allowXenHvmOnly) return;
  throw new ImageError('E_UNSUPPORTED', `will not boot on ${platforms[0]!.label} (${options.target}): ${verdict.reasons.join('; ')}; --allow-xen-hvm-only writes it for ${verdict.platforms?.join(', ')} anyway`);
}

/** The commands that import the output into the target platform, when it has them. */
function importCommands(input: string, output: string, format: string, report: GuestReport, verdict: Verdict): Pick<TranslateResult, 'commands'> {
  const make = TARGET_FACTS[verdict.target].importCommands;
  if (!make) return {};
  const base = (input.split('/').pop() ?? input).replace(/\.(img|raw|qcow2|vmdk|vhd|vdi|gz|bz2|xz|manifest\.xml)$/g, '') || 'image';
  return { commands: make({ output: displayName(output), format, arch: report.arch, ena: verdict.platforms?.includes('Nitro') ?? false, name: `${base}-hvm` }) };
}

/** The disk build's boot code, with the files it needs in the filesystem (the chosen GRUB's). */
async function diskBootCode(c: BootContext): Promise<{ code: BootCode; changes: Change[] }> {
  const { ext, choice } = c;
  if (choice?.kind === 'grub2') {
    const g = await prepareGrub2({ ext, report: c.report, plan: c.plan, choice });
    return { code: { kind: 'grub2', boot: g.files.boot, core: g.core, choice }, changes: g.changes };
  }
  // No choice (an hd00 MBR install): GRUB legacy, from --grub-dir when given.
  const found = await stageFilesFrom(ext, c.report, choice ? (choice.source === 'grub-dir' ? c.grubDir : undefined) : c.grubDir);
  const stages = found.stages;
  checkFilesystemSupport(stages.stage1_5, c.facts);
  const changes: Change[] = [{
    step: 'bootloader',
    file: '(disk: MBR and the gap after it)',
    action: 'create',
    after: [`stage1 in the MBR; e2fs_stage1_5 (${Math.ceil(stages.stage1_5.length / 512)} sectors) from LBA 1`],
    why: `GRUB legacy from ${found.from}: ${choice?.why ?? 'its stage files'}`,
  }];
  // Stage files the guest keeps in /boot/grub are already where GRUB will read them.
  const inPlace = !c.grubDir && found.from === '/boot/grub';
  for (const [name, bytes] of inPlace ? [] : [['stage1', stages.stage1], ['stage2', stages.stage2!], ['e2fs_stage1_5', stages.stage1_5]] as const) {
    const path = `/boot/grub/${name}`;
    const have = await ext.exists(path) ? await ext.readFile(path) : undefined;
    if (have && Buffer.compare(have, bytes) === 0) continue;
    if (!(await ext.exists('/boot/grub'))) await ext.mkdir('/boot/grub', { recursive: true });
    await ext.writeFile(path, bytes, { mode: 0o644 });
    changes.push({ step: 'bootloader', file: path, action: have ? 'edit' : 'create', why: `GRUB legacy stage file (from ${found.from}) for the disk build` });
  }
  return { code: { kind: 'grub-legacy', stages, ...(choice ? { choice } : {}) }, changes };
}

/** The input disk with partition `index` replaced by the translated filesystem (and GRUB legacy in the MBR when given stages). */
async function partitionedDisk(disk: BlockDevice, index: number, fs: BlockDevice, stages: StageFiles | undefined): Promise<BlockDevice> {
  const table = await readPartitionTable(disk);
  const p = table.partitions.find((x) => x.index === index)!;
  let head: BlockDevice = new SliceDevice(disk, 0, p.start);
  if (stages) {
    const sector0 = new Uint8Array(512);
    await disk.read(sector0, 0);
    head = bootHead(disk, sector0, p.start, index, stages);
  }
  return new ConcatDevice([head, fs, new SliceDevice(disk, p.start + p.size, disk.size - p.start - p.size)]);
}

/** What the bootloader choice may use besides the guest's own files. */
async function bootloaderOptions(options: TranslateOptions): Promise<BootloaderOptions> {
  const host = await hostGrub2Dir(options.hostGrubDirs ?? HOST_GRUB2_DIRS);
  return {
    ...(options.bootloader ? { force: options.bootloader } : {}),
    ...(options.grubDir ? { grubDir: await grubDirKind(options.grubDir) } : {}),
    ...(host ? { hostGrub2: host } : {}),
  };
}

/** MBR + embedded GRUB (stage 1.5, or GRUB 2's core.img) + the filesystem in partition 1 (+ zeros up to --size). */
async function bootableDisk(fs: BlockDevice, code: BootCode, uuid: string, options: TranslateOptions): Promise<BlockDevice> {
  const startSector = options.align === 'legacy' ? 63 : 2048;
  const start = startSector * 512;
  const minimum = start + fs.size;
  const size = options.size ?? minimum;
  if (size < minimum) throw new ImageError('E_OUT_OF_RANGE', `--size ${size} is smaller than the filesystem plus its alignment (${minimum} bytes)`);
  // A disk signature derived from the filesystem UUID: the same input gives the same disk.
  const signature = Number.parseInt(uuid.replace(/-/g, '').slice(0, 8), 16) >>> 0 || 1;
  const mbr = createMbr({ diskSize: size, align: options.align ?? 'modern', partitionSize: size - start, type: 0x83, bootable: true, diskSignature: signature });
  const { mbr: sector0, embedded } = code.kind === 'grub2'
    ? grub2BootSectors(mbr.sector, code.boot, code.core)
    : grubBootSectors(mbr.sector, code.stages, { slice: 0 });
  const head = new MemoryDevice(start);
  head.bytes.set(sector0, 0);
  head.bytes.set(embedded, 512);
  return new ConcatDevice([head, fs, new ZeroDevice(size - minimum)]);
}
