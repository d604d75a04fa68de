import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { ImageError, makeTempDir, removeTempDir } from '@amitrans/block';
import { inspectOpened, openImage, translate, verify, type OpenedImage, type TranslateBundleOptions, type TranslateBundleResult, type TranslateOptions } from '@amitrans/diskimg';
import { TARGET_FACTS, TARGETS, type GuestReport, type Target, type Verdict } from '@amitrans/guest';
import { isTransient, redact, type RemoteOptions } from '@amitrans/remote';
import { FleetError } from './errors.js';
import { resultKey, type BundleRecord, type ErrorRecord, type GuestSummary, type ImageResult, type Outcome, type StageRecord, type TargetResult, type VerifyRecord } from './record.js';
import type { FleetStore } from './store.js';
import { addTimes, newTimes, roundTimes, timed, type FleetTimes } from './times.js';
import type { FleetItem } from './worklist.js';

/**
 * The container each target gets unless told otherwise: what its hypervisor imports natively
 * (eucalyptus: the EMI bundle when the run has the bundle credentials, see formatFor).
 */
export const DEFAULT_FORMATS: Readonly<Record<Target, string>> = Object.fromEntries(TARGETS.map((t) => [t, TARGET_FACTS[t].nativeFormat])) as Record<Target, string>;

/** The format that delivers an EMI bundle with its EKI and ERI (what euca2ools' pipeline ends with). */
export const BUNDLE = 'bundle';

/** Translation options the whole fleet shares (the per-image ones come from the pipeline). */
export type SharedTranslateOptions = Pick<TranslateOptions, 'rootPassword' | 'sshPasswordAuth' | 'grubDir' | 'bootloader' | 'clean' | 'rootBy' | 'initrdAdd'>;

export interface PipelineOptions {
  store: FleetStore;
  remote?: RemoteOptions;
  formats?: Partial<Record<Target, string>>;
  translate?: SharedTranslateOptions;
  /** Boot each output under QEMU the way its target would: seconds of timeout, and the console line that means success (default a login prompt). */
  verify?: { timeout: number; expect?: string } | undefined;
  /** Who runs this (host:pid, or a queue worker's name). */
  worker?: string;
  attempt?: number;
  signal?: AbortSignal;
  /**
   * Throw transient errors instead of recording them, so a queue retries the image (a local
   * run records them as failed, and --retry-failed takes them up again).
   */
  throwTransient?: boolean;
  /** Called as each stage starts (progress, status). */
  onStage?: (id: string, stage: string) => void;
  /**
   * The cloud certificate and account id (and the user's certificate and key to sign) for
   * EMI bundles: with them eucalyptus is delivered as a bundle unless `formats` says otherwise.
   */
  bundle?: TranslateBundleOptions;
  /** The run's or worker's time account: each image adds its store checks and journal writes to it. */
  times?: FleetTimes;
}

/** What `target` is delivered as: the format asked for, else the EMI bundle (eucalyptus, with credentials), else the default. */
export function formatFor(target: Target, o: Pick<PipelineOptions, 'formats' | 'bundle'>): string {
  return o.formats?.[target] ?? (target === 'eucalyptus' && o.bundle ? BUNDLE : DEFAULT_FORMATS[target]);
}

/** An output's key; a bundle's is its machine image's manifest, written last (the EKI and ERI beside it). */
export function outputKey(id: string, target: Target, format: string): string {
  if (format === BUNDLE) return `images/${id}/${target}-bundle/${id}.manifest.xml`;
  return `images/${id}/${id}-${target}.${format === 'raw' ? 'img' : format}`;
}

/** The change report next to an output: a taken-over job finds it with the output. */
function changesKey(output: string): string {
  return `${output}.changes.json`;
}

/** A bundle's kernel and ramdisk manifests and register commands, beside its manifest like the change report. */
function bundleKey(output: string): string {
  return `${output}.bundle.json`;
}

export function workerName(): string {
  return `${hostname()}:${process.pid}`;
}

/**
 * One image through the pipeline: open -> inspect -> verdict per target -> translate each
 * target that can boot -> deliver -> verify (optional) -> the result record. Errors of the
 * image end in its record (status failed), never in an exception, except an interruption
 * (nothing is recorded, the image is redone) and, for queues, transient faults.
 */
export async function processImage(item: FleetItem, outer: PipelineOptions): Promise<ImageResult> {
  const t0 = performance.now();
  // The image's own account, so its record can say what the fleet cost it; added to the run's at the end.
  const o = { ...outer, times: newTimes() };
  const result = newRecord(item, o);
  try {
    if (item.source === undefined) throw new FleetError('E_NO_SOURCE', item.sourceNote ?? 'no source');
    const source = item.source;
    // Opened and inspected once: each target's translation reads the same open image and report.
    const img = await stage(result.stages, 'open', item.id, o, () => openImage(source, o.remote ? { remote: o.remote } : {}));
    try {
      // With the run's bootloader options, so its verdicts are the ones its translations act on.
      const { grubDir, bootloader } = o.translate ?? {};
      const asked = { ...(grubDir ? { grubDir } : {}), ...(bootloader ? { bootloader } : {}) };
      const report = (await stage(result.stages, 'inspect', item.id, o, () => inspectOpened(img, asked))).report;
      result.guest = guestSummary(report);
      const verdicts = await stage(result.stages, 'verdict', item.id, o, async () => item.targets.map((t) => verdictOf(report, t)));
      for (const v of verdicts) result.targets.push(await processTarget(item, { source, img, report }, v, result.stages, o));
    } finally {
      await img.close();
    }
  } catch (err) {
    if (o.signal?.aborted || (o.throwTransient && transient(err))) throw err;
    failWhole(result, item, err);
  }
  return finish(result, t0, o, outer.times);
}

/**
 * The record of an image whose last try ended outside the pipeline (a queue job past its
 * timeout): failed, with that error, so the report still counts it.
 */
export async function recordFailure(item: FleetItem, err: unknown, outer: PipelineOptions): Promise<ImageResult> {
  const o = { ...outer, times: newTimes() };
  const result = newRecord(item, o);
  failWhole(result, item, err);
  return finish(result, performance.now(), o, outer.times);
}

function newRecord(item: FleetItem, o: PipelineOptions): ImageResult {
  return {
    id: item.id, source: item.source ?? null, status: 'done', meta: item.meta, targets: [], stages: [],
    worker: o.worker ?? workerName(), started: new Date().toISOString(), seconds: 0, attempt: o.attempt ?? 1,
  };
}

/** An error that stopped the whole image: every target says so. */
function failWhole(result: ImageResult, item: FleetItem, err: unknown): void {
  const error = errorRecord(err);
  result.error = error;
  result.targets = item.targets.map((target) => ({ target, outcome: 'error', tweaks: [], reasons: [error.message], error }));
}

/**
 * Written last, so that its presence means the image is done: the record, then its event.
 * The image's fleet times (`o.times`, the record's own write included) go into `into`.
 */
async function finish(result: ImageResult, t0: number, o: PipelineOptions & { times: FleetTimes }, into: FleetTimes | undefined): Promise<ImageResult> {
  if (result.error || result.targets.some((t) => t.error)) result.status = 'failed';
  // The record is the last stage, and it cannot hold the time of its own write.
  o.onStage?.(result.id, 'record');
  result.stages.push({ name: 'record', seconds: 0, ok: true, note: 'this record, written last' });
  result.overhead = roundTimes({ store: o.times.store, journal: o.times.journal });
  result.seconds = round((performance.now() - t0) / 1000);
  await timed(o.times, 'journal', async () => {
    await o.store.putText(resultKey(result.id), `${JSON.stringify(result, null, 2)}\n`);
    await o.store.appendEvent({ event: 'done', id: result.id, status: result.status, worker: result.worker, attempt: result.attempt, at: new Date().toISOString() });
  });
  if (into) addTimes(into, o.times);
  return result;
}

/** The image a target is translated from: its source, open, and its inspection. */
interface Inspected {
  source: string;
  img: OpenedImage;
  report: GuestReport;
}

function verdictOf(report: GuestReport, target: Target): Verdict {
  return report.verdicts.find((v) => v.target === target) ?? { target, status: 'will-not-boot', changes: [], reasons: ['inspection gave no verdict for this target'] };
}

const OUTCOMES: Record<Verdict['status'], Outcome> = { boots: 'works', 'boots-after-translation': 'tweaks', 'will-not-boot': 'wont' };

async function processTarget(item: FleetItem, input: Inspected, v: Verdict, stages: StageRecord[], o: PipelineOptions): Promise<TargetResult> {
  const r: TargetResult = { target: v.target, outcome: OUTCOMES[v.status], verdict: v.status, tweaks: v.changes, reasons: v.reasons };
  if (v.bus) r.bus = v.bus;
  if (v.kernel) r.kernel = v.kernel;
  if (v.status === 'will-not-boot') return r;
  const format = formatFor(v.target, o);
  const key = outputKey(item.id, v.target, format);
  try {
    const size = await timed(o.times, 'store', () => o.store.size(key));
    if (size !== undefined) {
      // Delivered before (a rerun, or a worker that died after delivering): never again.
      const sha256 = await stage(stages, `deliver:${v.target}`, item.id, o, () => o.store.sha256(key), 'already delivered');
      r.output = { key, format, size, sha256, delivery: 'existing' };
      const changes = await timed(o.times, 'store', () => o.store.getText(changesKey(key)));
      if (changes !== undefined) r.changes = JSON.parse(changes) as TargetResult['changes'];
      const bundle = format === BUNDLE ? await timed(o.times, 'store', () => o.store.getText(bundleKey(key))) : undefined;
      if (bundle !== undefined) r.output.bundle = JSON.parse(bundle) as BundleRecord;
      if (o.verify) r.verify = format === BUNDLE ? BUNDLE_NOT_VERIFIED : await verifyStage(o.store.localPath(key), v.target, item.id, stages, o);
      return r;
    }
    if (format === BUNDLE) await deliverBundle(item, input, v.target, key, r, stages, o);
    else await deliverFile(item, input, v.target, format, key, r, stages, o);
  } catch (err) {
    if (o.signal?.aborted || (o.throwTransient && transient(err))) throw err;
    r.outcome = 'error';
    r.error = errorRecord(err);
  }
  return r;
}

/** Translation options of one target: the image already open and inspected by the pipeline. */
function translateOptions(input: Inspected, target: Target, o: PipelineOptions): TranslateOptions {
  return { ...o.translate, target, image: input.img, report: input.report, ...(o.remote ? { remote: o.remote } : {}), ...(o.signal ? { signal: o.signal } : {}) };
}

/** A file output: translated into a temporary directory, then delivered to its key (the commit point), then verified. */
async function deliverFile(item: FleetItem, input: Inspected, target: Target, format: string, key: string, r: TargetResult, stages: StageRecord[], o: PipelineOptions): Promise<void> {
  const dir = await makeTempDir('fleet');
  try {
    const staged = join(dir, basename(key));
    const t = await stage(stages, `translate:${target}`, item.id, o, () => translate(input.source, staged, { ...translateOptions(input, target, o), format, sha256: true }));
    r.changes = t.changes;
    // Delivery is the commit point: an abort seen before it leaves nothing under images/.
    // The change report goes next to the output only once the output is there.
    const stored = await stage(stages, `deliver:${target}`, item.id, o, () => o.store.deliver(staged, key, o.signal, t.sha256));
    await timed(o.times, 'journal', () => o.store.putText(changesKey(key), JSON.stringify(t.changes)));
    // Verify the staged copy when the store is remote (QEMU boots local files), in place otherwise.
    r.output = { key, format, size: stored.size, sha256: stored.sha256, delivery: 'new' };
    await delivered(item.id, target, key, stored.sha256, o);
    if (o.verify) r.verify = await verifyStage(o.store.localPath(key) ?? staged, target, item.id, stages, o);
  } finally {
    await removeTempDir(dir);
  }
}

/**
 * An EMI bundle with its EKI and ERI, what euca2ools' pipeline ends with: translate bundles
 * straight into the store (a directory, or uploads to its s3:// prefix), each bundle's parts
 * before its manifest and the EMI's manifest last, so that manifest, the key, is the commit
 * point a rerun checks. The register commands go into the record.
 */
async function deliverBundle(item: FleetItem, input: Inspected, target: Target, key: string, r: TargetResult, stages: StageRecord[], o: PipelineOptions): Promise<void> {
  if (!o.bundle) throw new FleetError('E_USAGE', `${key}: an EMI bundle needs the cloud certificate and the account id (--ec2cert, --user)`);
  const t = await stage(stages, `translate:${target}`, item.id, o, () =>
    translate(input.source, o.store.location(key), { ...translateOptions(input, target, o), bundle: { ...o.bundle!, prefix: item.id } }));
  r.changes = t.changes;
  const b = t.bundle!;
  // The bundles are in place already: read back what the record names (the manifest's digest covers every part's).
  const stored = await stage(stages, `deliver:${target}`, item.id, o, async () => ({ size: (await o.store.size(key))!, sha256: await o.store.sha256(key) }), 'bundled in place');
  const dir = key.slice(0, key.lastIndexOf('/') + 1);
  const bundle = bundleRecord(dir, b);
  await timed(o.times, 'journal', async () => {
    await o.store.putText(changesKey(key), JSON.stringify(t.changes));
    await o.store.putText(bundleKey(key), JSON.stringify(bundle));
  });
  r.output = { key, format: BUNDLE, size: stored.size, sha256: stored.sha256, delivery: 'new', bundle };
  await delivered(item.id, target, key, stored.sha256, o);
  if (o.verify) r.verify = BUNDLE_NOT_VERIFIED;
}

function bundleRecord(dir: string, b: TranslateBundleResult): BundleRecord {
  return {
    kernel: `${dir}${b.eki.manifestName}`,
    ramdisk: `${dir}${b.eri.manifestName}`,
    imageSize: b.emi.size,
    bundledSize: b.emi.bundledSize + b.eki.bundledSize + b.eri.bundledSize,
    signed: b.emi.signed,
    register: b.register,
  };
}

const BUNDLE_NOT_VERIFIED: VerifyRecord = {
  result: 'not-verifiable', seconds: 0, milestones: [],
  detail: 'an EMI bundle: boot it with amitrans verify -t eucalyptus EMI.manifest.xml --kernel EKI.manifest.xml --ramdisk ERI.manifest.xml and the key that opens it',
};

async function delivered(id: string, target: Target, key: string, sha256: string, o: PipelineOptions): Promise<void> {
  await timed(o.times, 'journal', () => o.store.appendEvent({ event: 'delivered', id, target, key, sha256, worker: o.worker ?? workerName(), at: new Date().toISOString() }));
}

async function verifyStage(path: string | undefined, target: Target, id: string, stages: StageRecord[], o: PipelineOptions): Promise<VerifyRecord | undefined> {
  if (path === undefined) return { result: 'not-verifiable', detail: 'the output is in object storage and was delivered by an earlier run', seconds: 0, milestones: [] };
  const v = await stage(stages, `verify:${target}`, id, o, () => verify(path, { target, timeout: o.verify!.timeout, ...(o.verify!.expect !== undefined ? { expect: new RegExp(o.verify!.expect) } : {}), ...(o.signal ? { signal: o.signal } : {}) }));
  const rec: VerifyRecord = { result: v.result, seconds: round(v.seconds), milestones: v.milestones.map((m) => ({ name: m.name, seconds: round(m.seconds) })) };
  if (v.class) rec.class = v.class;
  if (v.detail) rec.detail = v.detail;
  const login = v.milestones.find((m) => m.name === 'login' || m.name === 'expected' || m.name === 'ssh');
  if (login) rec.login = round(login.seconds);
  return rec;
}

/** Run one named stage, recording its time whether it succeeds or throws. */
async function stage<T>(stages: StageRecord[], name: string, id: string, o: PipelineOptions, fn: () => Promise<T>, note?: string): Promise<T> {
  o.onStage?.(id, name);
  o.signal?.throwIfAborted();
  const t0 = performance.now();
  const rec: StageRecord = { name, seconds: 0, ok: false, ...(note ? { note } : {}) };
  stages.push(rec);
  try {
    const value = await fn();
    rec.ok = true;
    return value;
  } finally {
    rec.seconds = round((performance.now() - t0) / 1000);
  }
}

/** A network fault, an S3 5xx, or a retry budget spent on them: worth another try later. */
export function transient(err: unknown): boolean {
  if (isTransient(err)) return true;
  return err instanceof ImageError && err.code === 'E_IO' && isTransient(err.cause);
}

export function errorRecord(err: unknown): ErrorRecord {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : err instanceof Error ? err.name : 'E_UNKNOWN';
  const message = redact(typeof e?.message === 'string' ? e.message : String(err));
  return { code, message, transient: transient(err) };
}

function guestSummary(r: GuestReport): GuestSummary {
  return {
    distro: r.distro.id,
    release: r.distro.name && r.distro.version ? `${r.distro.name} ${r.distro.version}` : r.distro.name || r.distro.id,
    arch: r.arch,
    layout: r.layout,
    kernels: r.kernels.map((k) => ({ version: k.version, xenOnly: k.xenOnly, isDefault: k.isDefault })),
  };
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
