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
  installGrubStages,
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
  type WritableGuestFs,
} from '@amitrans/guest';
import { createMbr, readPartitionTable } from '@amitrans/mbr';
import { bundleTranslation, type TranslateBundleOptions, type TranslateBundleResult } from './bundle-translate.js';
import { pathsOf, writeDisk, type OutputSummary } from './convert.js';
import { finishingSink, resolveOutput, type ImageOutput, type ResolvedOutput } from './output.js';
import { findRoot, inspectRoot, type RootFilesystem } from './inspect.js';
import { bootloaderOptions, prepareGrub2 } from './grub2.js';
import { inputName, openImage, type ImageInput, type OpenedImage } from './open.js';
import { timeStage, type StageTime } from './stages.js';
import { metered } from './network.js';
import { DISK_TARGETS, bootHead, mbrHasNoBootCode, withMbrVerdict } from './hd00.js';
import { ovaOptionsFor } from './ova.js';

export interface TranslateOptions {
  target: Target;
  /** How s3:// and http(s):// inputs and outputs are reached. */
  remote?: RemoteOptions;
  /** Output format (raw, qcow2, vmdk, vhd, vdi); default from the output name. Required for a Sink output. */
  format?: string;
  /** The name a BlockDevice input is shown under (default '<device>'); a bundle's default name too. */
  name?: string;
  /** The name a Sink output is shown under (default '<sink>'). */
  outputName?: string;
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
  /**
   * The input, already open (the fleet opened it to inspect it): read from it instead of
   * opening it again, and left open for the caller.
   */
  image?: OpenedImage;
  /**
   * The guest's inspection of this same input (inspectOpened's report): used instead of
   * inspecting again, the costly part (initrds). The verdict is still this call's own.
   */
  report?: GuestReport;
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
  /** Each stage's wall time, in order (a dry run stops after bootloader). */
  stages: StageTime[];
}

/** Boot code for the disk build: GRUB legacy's stage files, or GRUB 2's boot.img and core.img. */
type BootCode = ({ kind: 'grub-legacy'; stages: StageFiles } | { kind: 'grub2'; boot: Uint8Array; core: Uint8Array }) & { choice?: BootloaderChoice };

interface BootContext {
  guest: OpenGuest;
  report: GuestReport;
  plan: TranslatePlan;
  choice: BootloaderChoice | undefined;
  grubDir: string | undefined;
}

/** The root filesystem opened for translation: every write lands in the overlay. */
interface OpenGuest {
  img: OpenedImage;
  root: RootFilesystem;
  overlay: CowOverlay;
  ext: ExtFs;
  fs: WritableGuestFs;
}

interface Inspected {
  report: GuestReport;
  /** What the bootloader choice may use besides the guest's own files. */
  bootOptions: BootloaderOptions;
}

/** What the output holds: a new bootable disk, the input's partitions around the filesystem, or the filesystem alone. */
interface Layout {
  diskBuild: boolean;
  fsOnly: boolean;
  /** GRUB legacy goes into the input's MBR (a partitioned AMI on a disk target). */
  mbrInstall: boolean;
}

interface Planned {
  layout: Layout;
  verdict: Verdict;
  plan: TranslatePlan;
  password?: { hash: string; shown?: string };
}

interface Boot {
  code?: BootCode;
  changes: Change[];
}

interface OutputDisk {
  /** The translated filesystem, free blocks as holes. */
  fs: BlockDevice;
  /** What the output container holds. */
  disk: BlockDevice;
}

interface ResultInput {
  /** The input's and the output's names as shown (a device's or a sink's given name). */
  input: string;
  output: string;
  options: TranslateOptions;
  prepared: ResolvedOutput;
  guest: OpenGuest;
  report: GuestReport;
  planned: Planned;
  changes: Change[];
  boot: Boot;
  stages: StageTime[];
}

type WriteInput = Pick<ResultInput, 'input' | 'output' | 'options' | 'prepared' | 'guest' | 'report'> & { verdict: Verdict };

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
 * never written. Each stage below is timed into the result's `stages`. A BlockDevice input
 * stays open (it is the caller's); a Sink output is committed when the output is written
 * and aborted otherwise: on error, and by a dry run (see ImageOutput).
 */
export function translate(input: ImageInput, output: ImageOutput, asked: TranslateOptions): Promise<TranslateResult> {
  return finishingSink(output, (out) => translateTo(input, out, asked));
}

async function translateTo(source: ImageInput, target: ImageOutput, asked: TranslateOptions): Promise<TranslateResult> {
  const started = performance.now();
  const stages: StageTime[] = [];
  checkTranslateOptions(asked);
  // A meter on the remote options: what went over the network, for --json and progress.
  const net = metered(asked.remote, source, target);
  const options: TranslateOptions = { ...asked, remote: net.remote };
  const prepared = resolveTargetOutput(target, options);
  const input = inputName(source, options.name);
  const output = prepared.output;
  checkBundleOutput(prepared, options, source);
  await prepared.destination.guard(pathsOf(source));
  // A caller that opened the input already (the fleet) hands it over; it stays open for them.
  const img = await timeStage(stages, 'open', async () => options.image ?? openImage(source, { remote: options.remote, name: input }));
  try {
    await prepared.destination.guard(img.files);
    const guest = await timeStage(stages, 'open-guest', () => openGuest(img, options.partition));
    try {
      const inspected = await timeStage(stages, 'inspect', () => inspectForTranslation(guest, options));
      const planned = await timeStage(stages, 'plan', () => planTranslation(guest, inspected, options));
      const changes = await runGuestSteps(stages, guest, inspected.report, planned.plan, options);
      const boot = await timeStage(stages, 'bootloader', () => installBootCode(guest, inspected, planned, options));
      const result = translationResult({ input, output, options, prepared, guest, report: inspected.report, planned, changes: [...changes, ...boot.changes], boot, stages });
      // Every edit went to the in-memory overlay, so a dry run made them all too and only
      // skips the write: the report is the run's by construction.
      if (!options.dryRun) {
        const disk = await timeStage(stages, 'layout', () => outputDisk(guest, planned.layout, boot.code, options));
        await timeStage(stages, 'write', () => writeTranslation(result, disk, { input, output, options, prepared, guest, report: inspected.report, verdict: planned.verdict }));
        Object.assign(result, net.summary());
      }
      result.seconds = (performance.now() - started) / 1000;
      return result;
    } finally {
      await guest.ext.close();
    }
  } catch (err) {
    throw err instanceof ImageError ? err.inFile(input) : err;
  } finally {
    if (!options.image) await img.close();
  }
}

/**
 * A bundle (-O bundle, or a .manifest.xml output) is for Eucalyptus, and needs its
 * certificate and account; and a name, which a device input does not have.
 */
function checkBundleOutput(prepared: ResolvedOutput, options: TranslateOptions, source: ImageInput): void {
  if (!prepared.bundle) return;
  if (options.target !== 'eucalyptus' || !options.bundle) {
    throw new ImageError('E_USAGE', '-O bundle is for -t eucalyptus, with the cloud certificate and account id (--ec2cert, --user)');
  }
  if (typeof source !== 'string' && options.name === undefined && options.bundle.prefix === undefined && prepared.bundle.prefix === undefined) {
    throw new ImageError('E_USAGE', 'a bundle of a device input needs a name: give the bundle a prefix or the device a name');
  }
}

/** The root filesystem, opened writable over a copy-on-write overlay: the input stays as it was. */
async function openGuest(img: OpenedImage, partition: number | undefined): Promise<OpenGuest> {
  const root = await findRoot(img, partition);
  const overlay = new CowOverlay(root.device);
  const ext = await ExtFs.open(overlay, { writable: true });
  return { img, root, overlay, ext, fs: extGuestFs(ext) };
}

/** The guest as inspect sees it, with the bootloaders this translation may install. */
async function inspectForTranslation(guest: OpenGuest, options: TranslateOptions): Promise<Inspected> {
  const bootOptions = await bootloaderOptions(options);
  // A caller's own inspection of this input (the fleet's) saves the costly part, the initrds.
  return { report: options.report ?? await inspectRoot(guest.ext, guest.root, bootOptions), bootOptions };
}

/** What the output is (disk build, partitioned, filesystem), the kernel and bus to boot, and the steps' plan. */
async function planTranslation(guest: OpenGuest, inspected: Inspected, options: TranslateOptions): Promise<Planned> {
  const layout = await chooseLayout(guest, options);
  const verdict = chooseKernel(inspected, layout, guest.root, options);
  const password = options.rootPassword ? await rootPasswordHash(options.rootPassword) : undefined;
  return { layout, verdict, plan: stepPlan(verdict, layout, guest.root, password?.hash, options), ...(password ? { password } : {}) };
}

async function chooseLayout(guest: OpenGuest, options: TranslateOptions): Promise<Layout> {
  const partition = guest.root.partition;
  const diskTarget = DISK_TARGETS.includes(options.target);
  return {
    diskBuild: partition === undefined && diskTarget,
    // A partitioned AMI for Xen or Eucalyptus: the output is its root filesystem alone.
    fsOnly: partition !== undefined && !diskTarget,
    // A partitioned AMI on a disk target: GRUB legacy into the MBR when it has no boot code (hd00) or when asked.
    mbrInstall: partition !== undefined && diskTarget && (options.grubDir !== undefined || (await mbrHasNoBootCode(guest.img.disk))),
  };
}

/** The verdict for the target (its kernel and bus), or the reason the output would not boot. */
function chooseKernel(inspected: Inspected, layout: Layout, root: RootFilesystem, options: TranslateOptions): Verdict {
  const { report, bootOptions } = inspected;
  // Without the initrd step (--skip initrd, or --only without it) only what the initrd already has counts.
  const inject = !(options.skip?.includes('initrd') || (options.only !== undefined && !options.only.includes('initrd')));
  let verdict = verdictFor(report, options.target, { ...(options.bus ? { bus: options.bus } : {}), bootloader: bootOptions, inject });
  if (layout.mbrInstall) verdict = withMbrVerdict(verdict, report, root.partition!);
  if (verdict.status === 'will-not-boot' && !(layout.diskBuild && options.grubDir && verdict.kernel)) {
    throw new ImageError('E_UNSUPPORTED', `will not boot on ${options.target}: ${verdict.reasons.join('; ')}`);
  }
  checkPlatforms(verdict, options);
  return verdict;
}

function stepPlan(verdict: Verdict, layout: Layout, root: RootFilesystem, passwordHash: string | undefined, options: TranslateOptions): TranslatePlan {
  return {
    target: options.target,
    bus: verdict.bus!,
    kernel: verdict.kernel!,
    diskBuild: layout.diskBuild,
    rootBy: options.rootBy ?? 'uuid',
    rootFs: { uuid: root.facts.uuid, label: root.facts.label, type: root.facts.type },
    ...(root.partition !== undefined ? { grubRoot: layout.fsOnly ? '(hd0)' : `(hd0,${root.partition - 1})` } : {}),
    ...(passwordHash !== undefined ? { rootPasswordHash: passwordHash } : {}),
    ...(options.sshPasswordAuth ? { sshPasswordAuth: options.sshPasswordAuth } : {}),
    selinux: options.selinux ?? 'relabel',
    clean: options.clean ?? DEFAULT_CLEAN,
    ...(options.eucalyptus ? { eucalyptus: options.eucalyptus } : {}),
    ...(options.initrdAdd?.length ? { initrdAdd: options.initrdAdd } : {}),
  };
}

/**
 * The guest steps, each its own stage (step:initrd is the one that costs). They run for
 * real on the overlay even for --dry-run, so later stages see what earlier ones did.
 */
function runGuestSteps(stages: StageTime[], guest: OpenGuest, report: GuestReport, plan: TranslatePlan, options: TranslateOptions): Promise<Change[]> {
  return runSteps({ fs: guest.fs, report, plan, dryRun: false }, {
    ...(options.only ? { only: options.only } : {}),
    ...(options.skip ? { skip: options.skip } : {}),
    around: (name, run) => timeStage(stages, `step:${name}`, run),
  });
}

/** The boot code a disk build or an hd00 MBR install embeds, with what it put in the filesystem. */
async function installBootCode(guest: OpenGuest, inspected: Inspected, planned: Planned, options: TranslateOptions): Promise<Boot> {
  const c = { guest, report: inspected.report, plan: planned.plan, grubDir: options.grubDir };
  if (planned.layout.diskBuild) {
    const picked = chooseBootloader(inspected.report, inspected.bootOptions);
    return diskBootCode({ ...c, choice: picked.kind ? picked : undefined });
  }
  if (!planned.layout.mbrInstall) return { changes: [] };
  const boot = await diskBootCode({ ...c, choice: undefined });
  const partition = guest.root.partition;
  return {
    code: boot.code,
    changes: [
      ...boot.changes.filter((x) => !x.file.startsWith('(disk')),
      { step: 'bootloader', file: '(MBR)', action: 'edit', why: `GRUB legacy stage 1 in sector 0 and stage 1.5 after it, for partition ${partition}: ${options.grubDir ? 'asked for with --grub-dir' : 'sector 0 had no boot code (pv-grub hd00 layout)'}` },
    ],
  };
}

/** The result as far as the guest goes; the write stage fills in what it wrote. */
function translationResult(t: ResultInput): TranslateResult {
  const { layout, verdict, password } = t.planned;
  const partitioned = t.guest.root.partition !== undefined;
  return {
    input: t.guest.img.file,
    output: displayName(t.output),
    target: t.options.target,
    format: t.prepared.bundle ? 'bundle' : t.prepared.driver.name,
    layout: layout.diskBuild ? 'disk' : partitioned && !layout.fsOnly ? 'partitioned' : 'filesystem',
    verdict,
    changes: mergeChanges(t.changes),
    ...(password?.shown ? { rootPassword: password.shown } : {}),
    report: t.report,
    ...(t.boot.code?.choice ? { bootloader: t.boot.code.choice } : {}),
    ...importCommands(t.input, t.output, t.prepared.driver.name, t.report, verdict),
    stages: t.stages,
    virtualSize: 0,
    bytesRead: 0,
    bytesWritten: 0,
    seconds: 0,
    notes: [],
  };
}

/** The device the output holds: the filesystem alone, a new bootable disk, or the input disk around it. */
async function outputDisk(guest: OpenGuest, layout: Layout, code: BootCode | undefined, options: TranslateOptions): Promise<OutputDisk> {
  await guest.ext.flush();
  // Free blocks become holes: stale deleted data never reaches the output.
  const fs = new MaskedDevice(guest.overlay, await guest.ext.freeRanges());
  const partition = guest.root.partition;
  if (layout.diskBuild) return { fs, disk: await bootableDisk(fs, code!, guest.root.facts.uuid, options) };
  if (partition === undefined || layout.fsOnly) return { fs, disk: fs };
  return { fs, disk: await partitionedDisk(guest.img.disk, partition, fs, code?.kind === 'grub-legacy' ? code.stages : undefined) };
}

/** Write the output (or the EMI, EKI and ERI bundles) and record what was written. */
async function writeTranslation(result: TranslateResult, out: OutputDisk, w: WriteInput): Promise<void> {
  const { options, prepared } = w;
  if (prepared.bundle) {
    const b = prepared.bundle;
    const bundle = await bundleTranslation(w.guest.fs, out.fs, w.report, w.verdict.kernel!, w.input, b.location, { ...options.bundle!, prefix: options.bundle!.prefix ?? b.prefix, remote: options.remote },
      options.progress, options.signal);
    Object.assign(result, {
      bundle,
      output: bundle.emi.manifest,
      virtualSize: out.fs.size,
      bytesRead: bundle.emi.bytesRead,
      bytesWritten: bundle.emi.bundledSize + bundle.eki.bundledSize + bundle.eri.bundledSize,
    });
    return;
  }
  // An appliance describes the guest: its OS type and the controller the verdict chose; it
  // is named after its file, and is 'appliance' without one (stdout, a Sink).
  const ova = prepared.driver.describesGuest ? ovaOptionsFor(w.report, w.verdict, prepared.destination.fileName ?? '-', prepared.options) : undefined;
  result.notes.push(...(ova?.notes ?? []));
  if (prepared.compression) result.notes.push(`the output is ${prepared.compression}-compressed`);
  const written = await writeDisk(out.disk, prepared, {
    ...(ova ? { writerOptions: ova.options } : {}),
    progress: (done, total) => options.progress?.('write', done, total),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.sha256 ? { sha256: true } : {}),
    ...(options.remote ? { remote: options.remote } : {}),
  });
  result.virtualSize = written.virtualSize ?? out.disk.size;
  result.bytesRead = written.bytesRead;
  result.bytesWritten = written.bytesWritten;
  result.notes.push(...(written.notes ?? []));
  if (written.sha256) result.sha256 = written.sha256;
}

/**
 * The output as the target's import takes it: only its formats, with the options it needs
 * (ec2-hvm: VMDK streamOptimized), uncompressed.
 */
function resolveTargetOutput(output: ImageOutput, options: TranslateOptions): ResolvedOutput {
  const rule = TARGET_FACTS[options.target].outputs;
  const first = resolveOutput(output, options.format, options.formatOptions, options.outputName);
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
  return Object.keys(wanted).length ? resolveOutput(output, options.format, { ...wanted, ...given }, options.outputName) : first;
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
  const { guest, choice } = c;
  if (choice?.kind === 'grub2') {
    const g = await prepareGrub2({ ext: guest.ext, report: c.report, plan: c.plan, choice });
    return { code: { kind: 'grub2', boot: g.files.boot, core: g.core, choice }, changes: g.changes };
  }
  // No choice (an hd00 MBR install): GRUB legacy, from --grub-dir when given.
  const grubDir = choice ? (choice.source === 'grub-dir' ? c.grubDir : undefined) : c.grubDir;
  const found = await stageFilesFrom(guest.ext, c.report, grubDir);
  const stages = found.stages;
  checkFilesystemSupport(stages.stage1_5, guest.root.facts);
  const embedded: Change = {
    step: 'bootloader',
    file: '(disk: MBR and the gap after it)',
    action: 'create',
    after: [`stage1 in the MBR; e2fs_stage1_5 (${Math.ceil(stages.stage1_5.length / 512)} sectors) from LBA 1`],
    why: `GRUB legacy from ${found.from}: ${choice?.why ?? 'its stage files'}`,
  };
  const source = { stage1: stages.stage1, stage2: stages.stage2!, e2fs_stage1_5: stages.stage1_5, from: found.from };
  const copied = await installGrubStages({ fs: guest.fs, dryRun: false }, source, grubDir === undefined);
  return { code: { kind: 'grub-legacy', stages, ...(choice ? { choice } : {}) }, changes: [embedded, ...copied] };
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
