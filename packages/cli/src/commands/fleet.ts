import { TARGETS, type CleanOperation, type Target } from '@amitrans/guest';
import type { RemoteOptions } from '@amitrans/remote';
import type { TranslateBundleOptions } from '@amitrans/diskimg';
import { credentialsFromEnv, translateBundleOptions, type TranslateBundleArgs } from './bundle.js';
import type { FleetItem, FleetTimes, ImageResult, Report, RunSummary, SharedTranslateOptions } from '@amitrans/fleet';
import { line, type CliIo } from '../io.js';
import { UsageError } from '../usage.js';

/** How each image is translated: fleet run and fleet submit share these flags. */
export interface FleetJobArgs {
  out: string;
  targets: string | undefined;
  formats: string | undefined;
  verify: boolean;
  verifyTimeout: number;
  verifyExpect: string | undefined;
  rootPassword: string | undefined;
  grubDir: string | undefined;
  clean: CleanOperation[] | undefined;
  noClean: boolean;
}

export interface FleetRunArgs extends FleetJobArgs {
  worklist: string;
  concurrency: number | undefined;
  retryFailed: boolean;
  json: boolean;
  progress: boolean;
  remote: RemoteOptions;
  bundle: TranslateBundleArgs;
}

// The fleet package (and BullMQ with it) is loaded only by the fleet commands: no other
// command pays for it at start-up.
const fleet = (): Promise<typeof import('@amitrans/fleet')> => import('@amitrans/fleet');

function parseTargets(text: string | undefined): Target[] | undefined {
  if (text === undefined) return undefined;
  const list = text.split(',').map((t) => t.trim()).filter(Boolean);
  const bad = list.filter((t) => !(TARGETS as readonly string[]).includes(t));
  if (bad.length || list.length === 0) throw new UsageError(`--targets ${JSON.stringify(text)}: expected targets from ${TARGETS.join(', ')}, comma-separated`);
  return list as Target[];
}

function parseFormats(text: string | undefined): Partial<Record<Target, string>> | undefined {
  if (text === undefined) return undefined;
  const out: Partial<Record<Target, string>> = {};
  for (const pair of text.split(',').filter(Boolean)) {
    const [t, f] = pair.split('=');
    if (!t || !f || !(TARGETS as readonly string[]).includes(t)) throw new UsageError(`--formats ${JSON.stringify(text)}: expected target=format pairs, e.g. kvm=qcow2,xenserver=vhd`);
    if (f === 'bundle' && t !== 'eucalyptus') throw new UsageError(`--formats ${t}=bundle: a bundle is for eucalyptus (an EMI with its EKI and ERI)`);
    out[t as Target] = f;
  }
  return out;
}

function verifyOption(a: FleetJobArgs): { verify?: { timeout: number; expect?: string } } {
  if (a.verifyExpect !== undefined) {
    if (!a.verify) throw new UsageError('--verify-expect goes with --verify');
    try {
      new RegExp(a.verifyExpect);
    } catch (err) {
      throw new UsageError(`--verify-expect: ${(err as Error).message}`);
    }
  }
  return a.verify ? { verify: { timeout: a.verifyTimeout, ...(a.verifyExpect !== undefined ? { expect: a.verifyExpect } : {}) } } : {};
}

function translateOptions(a: FleetJobArgs): SharedTranslateOptions {
  if (a.noClean && a.clean?.length) throw new UsageError('--clean and --no-clean cannot be used together');
  return {
    ...(a.rootPassword ? { rootPassword: a.rootPassword } : {}),
    ...(a.grubDir ? { grubDir: a.grubDir } : {}),
    ...(a.noClean ? { clean: [] } : a.clean ? { clean: a.clean } : {}),
  };
}

async function readItems(a: FleetJobArgs & { worklist: string }): Promise<FleetItem[]> {
  const { readWorklist } = await fleet();
  const targets = parseTargets(a.targets);
  return readWorklist(a.worklist, targets ? { targets } : {});
}

/**
 * EMI bundle credentials, flags first, then euca2ools' variables: none when no flag names
 * them, the environment lacks either, and --formats does not ask for bundles.
 */
async function bundleCredentials(a: TranslateBundleArgs, formats: Partial<Record<Target, string>> | undefined): Promise<{ bundle?: TranslateBundleOptions }> {
  const env = credentialsFromEnv(process.env, {});
  const asked = a.user !== undefined || a.ec2cert !== undefined || formats?.eucalyptus === 'bundle' || (env.user !== undefined && env.ec2cert !== undefined);
  if (!asked || (formats?.eucalyptus !== undefined && formats.eucalyptus !== 'bundle')) return {};
  return { bundle: await translateBundleOptions(a) };
}

/** `amitrans fleet run`: the local pool, then the report. Exit 1 when an image failed. */
export async function fleetRunCommand(a: FleetRunArgs, io: CliIo, signal: AbortSignal): Promise<number> {
  const f = await fleet();
  const items = await readItems(a);
  const store = f.openStore(a.out, a.remote);
  const formats = parseFormats(a.formats);
  const bundle = await bundleCredentials(a.bundle, formats);
  const meter = new FleetMeter(io, a.progress || (io.stderr.isTTY === true && !a.json), items.length);
  const startup = f.sinceStart();
  const { summary, results } = await f.runFleet(items, {
    store,
    remote: a.remote,
    ...(formats ? { formats } : {}),
    ...bundle,
    translate: translateOptions(a),
    ...verifyOption(a),
    ...(a.concurrency ? { concurrency: a.concurrency } : {}),
    retryFailed: a.retryFailed,
    signal,
    onImage: (e) => meter.image(e.phase, e.result),
  });
  meter.finish();
  summary.times.startup = startup;
  // From the records the run kept: the store is not read again for them.
  const report = await f.timed(summary.times, 'report', () => f.writeReport(store, results));
  summary.times = f.roundTimes(summary.times);
  printRun(io, a.json, summary, report, store.name);
  return report.totals.failed > 0 ? 1 : 0;
}

function printRun(io: CliIo, json: boolean, s: RunSummary, report: Report, where: string): void {
  if (json) {
    line(io.stdout, JSON.stringify({ run: s, totals: report.totals, byTarget: countsOnly(report), report: { json: `${where}/report.json`, html: `${where}/report.html` } }));
    return;
  }
  line(io.stdout, `${s.total} images: ${s.processed} processed now (${s.done} done, ${s.failed} failed), ${s.skipped} done before${s.stopped ? `, ${s.stopped} stopped` : ''}; ${s.seconds.toFixed(1)} s`);
  printCounts(io, report);
  line(io.stdout, timesLine(s.times));
  line(io.stdout, `report: ${where}/report.html`);
}

/** The fleet's own seconds, then the rest (not overhead), on one line. */
function timesLine(t: FleetTimes): string {
  const s = (x: number): string => `${x.toFixed(2)} s`;
  return `fleet time: queue ${s(t.queue)}, journal ${s(t.journal)}, store checks ${s(t.store)}, report ${s(t.report)}; idle ${s(t.idle)}, start-up ${s(t.startup)}`;
}

function countsOnly(report: Report): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const t of report.targets) {
    const c = report.byTarget[t]!;
    out[t] = { works: c.works, tweaks: c.tweaks, wont: c.wont, error: c.error };
  }
  return out;
}

function printCounts(io: CliIo, report: Report): void {
  for (const t of report.targets) {
    const c = report.byTarget[t]!;
    line(io.stdout, `  ${t.padEnd(10)} ${c.works} just work, ${c.tweaks} need tweaks, ${c.wont} won't boot, ${c.error} failed`);
  }
}

export interface FleetSubmitArgs extends FleetJobArgs {
  worklist: string;
  queue: string;
  queueName: string;
  timeout: number;
  attempts: number;
  json: boolean;
}

export async function fleetSubmitCommand(a: FleetSubmitArgs, io: CliIo): Promise<void> {
  const f = await fleet();
  const items = await readItems(a);
  const formats = parseFormats(a.formats);
  const shared = {
    out: a.out,
    timeout: a.timeout,
    translate: translateOptions(a),
    ...(formats ? { formats } : {}),
    ...verifyOption(a),
  };
  const startup = f.sinceStart();
  const s = await f.submitFleet(items, shared, { url: a.queue, name: a.queueName, attempts: a.attempts });
  s.times = f.roundTimes({ ...s.times, startup });
  if (a.json) line(io.stdout, JSON.stringify({ queue: a.queueName, images: items.length, ...s }));
  else line(io.stdout, `${items.length} images: ${s.added} jobs added to ${a.queueName}, ${s.existing} already there`);
}

export interface FleetWorkerArgs {
  queue: string;
  queueName: string;
  concurrency: number;
  lockSeconds: number;
  stalledSeconds: number;
  untilEmpty: boolean;
  json: boolean;
  progress: boolean;
  remote: RemoteOptions;
  bundle: TranslateBundleArgs;
}

export async function fleetWorkerCommand(a: FleetWorkerArgs, io: CliIo, signal: AbortSignal): Promise<void> {
  const f = await fleet();
  const tty = a.progress || (io.stderr.isTTY === true && !a.json);
  const summary = await f.runWorker({
    url: a.queue,
    name: a.queueName,
    concurrency: a.concurrency,
    lockSeconds: a.lockSeconds,
    stalledSeconds: a.stalledSeconds,
    untilEmpty: a.untilEmpty,
    remote: a.remote,
    ...(await bundleCredentials(a.bundle, undefined)),
    signal,
    onJob: (e) => {
      const event = { event: e.phase, id: e.id, ...(e.result ? { status: e.result.status, seconds: e.result.seconds } : {}), ...(e.error ? { error: e.error } : {}) };
      if (a.json) line(io.stdout, JSON.stringify(event));
      else if (tty) line(io.stderr, `${e.phase.padEnd(5)} ${e.id}${e.result ? ` ${e.result.status} (${e.result.seconds} s)` : ''}${e.error ? `: ${e.error}` : ''}`);
    },
  });
  if (a.json) line(io.stdout, JSON.stringify({ event: 'exit', ...summary }));
  else {
    line(io.stdout, `${summary.worker}: ${summary.processed} images (${summary.done} done, ${summary.failed} failed)`);
    line(io.stdout, timesLine(summary.times));
  }
}

export async function fleetStatusCommand(a: { queue: string; queueName: string; json: boolean }, io: CliIo): Promise<void> {
  const f = await fleet();
  const s = await f.queueStatus({ url: a.queue, name: a.queueName });
  if (a.json) {
    line(io.stdout, JSON.stringify(s));
    return;
  }
  line(io.stdout, `${s.queue}: ${Object.entries(s.counts).map(([k, n]) => `${n} ${k}`).join(', ')}`);
  line(io.stdout, `workers: ${s.workers.length ? s.workers.join(', ') : 'none'}`);
  for (const j of s.active) line(io.stdout, `  running ${j.id} on ${j.worker ?? '?'} (try ${j.attempt}, since ${j.since ?? '?'})`);
  for (const j of s.failed) line(io.stdout, `  failed  ${j.id}: ${j.reason}`);
}

export async function fleetReportCommand(a: { out: string; json: boolean; remote: RemoteOptions }, io: CliIo): Promise<void> {
  const f = await fleet();
  const times = f.newTimes();
  times.startup = f.sinceStart();
  const store = f.openStore(a.out, a.remote);
  const report = await f.timed(times, 'report', async () => {
    const results: ImageResult[] = [...(await f.loadResults(store)).values()];
    return f.writeReport(store, results);
  });
  if (a.json) {
    // The report, and what building it took (report.json cannot hold the time of its own write).
    line(io.stdout, JSON.stringify({ ...report, times: f.roundTimes(times) }));
    return;
  }
  line(io.stdout, `${report.totals.images} images (${report.totals.done} done, ${report.totals.failed} failed)`);
  printCounts(io, report);
  line(io.stdout, `report: ${store.name}/report.html`);
}

/**
 * Fleet progress on a TTY: images done and failed of the total, running, rate and ETA,
 * on one line of stderr redrawn as images finish.
 */
class FleetMeter {
  private readonly started = performance.now();
  private done = 0;
  private failed = 0;
  private running = 0;
  private shown = false;

  constructor(private readonly io: CliIo, private readonly enabled: boolean, private readonly total: number) {}

  image(phase: 'start' | 'end', result: ImageResult | undefined): void {
    if (phase === 'start') this.running++;
    else {
      this.running--;
      if (result?.status === 'failed') this.failed++;
      else this.done++;
    }
    if (!this.enabled) return;
    const finished = this.done + this.failed;
    const minutes = (performance.now() - this.started) / 60000;
    const rate = minutes > 0 ? finished / minutes : 0;
    const eta = rate > 0 ? ` ETA ${Math.ceil((this.total - finished) / rate)} min` : '';
    this.io.stderr.write(`\r\x1b[Kfleet: ${finished}/${this.total} (${this.failed} failed), ${this.running} running, ${rate.toFixed(1)} images/min${eta}`);
    this.shown = true;
  }

  finish(): void {
    if (this.shown) this.io.stderr.write('\r\x1b[K');
  }
}
