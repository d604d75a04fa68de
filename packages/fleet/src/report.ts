import { TARGETS, type Target } from '@amitrans/guest';
import { resultKey, type ImageResult, type Outcome } from './record.js';

export const OUTCOMES: readonly Outcome[] = ['works', 'tweaks', 'wont', 'error'];

export type OutcomeCounts = Record<Outcome, number>;

export interface Ranked {
  text: string;
  count: number;
}

export interface TargetSummary extends OutcomeCounts {
  /** The tweaks translation makes, by how many images need each. */
  topTweaks: Ranked[];
  /** Why images will not boot, most common first. */
  wontReasons: Ranked[];
  /** What failed in the pipeline, most common first. */
  errors: Ranked[];
}

export interface BreakdownRow {
  key: string;
  images: number;
  /** Outcome counts per target. */
  targets: Partial<Record<Target, OutcomeCounts>>;
}

export interface ImageRow {
  id: string;
  status: ImageResult['status'];
  distro: string;
  kernel: string;
  aki: string;
  class: string;
  arch: string;
  seconds: number;
  record: string;
  /** register: an EMI bundle's register commands (EKI and ERI first). */
  targets: Partial<Record<Target, { outcome: Outcome; why: string; output?: string; verify?: string; register?: string[] }>>;
}

export interface Report {
  generated: string;
  store: string;
  totals: { images: number; done: number; failed: number };
  targets: Target[];
  byTarget: Partial<Record<Target, TargetSummary>>;
  breakdowns: { distro: BreakdownRow[]; kernel: BreakdownRow[]; aki: BreakdownRow[]; class: BreakdownRow[] };
  verify: { booted: number; failed: number; notVerifiable: number; classes: Ranked[]; loginSeconds: { median: number; max: number } | null };
  /** Seconds spent per stage kind (translate, deliver, inspect...) over the fleet, and in all. */
  stageSeconds: Record<string, number>;
  images: ImageRow[];
}

/**
 * Reasons name versions and paths; the report groups reasons that differ only there, so
 * "the top reasons" counts kinds of problem, not kernels.
 */
export function reasonKind(reason: string): string {
  return reason
    .replace(/\([^)]*\)/g, '(…)')
    .replace(/\b\d+\.\d+[\w.+~-]*/g, 'N')
    .replace(/\/[\w./+-]+/g, '/…')
    .trim();
}

function rank(texts: Iterable<string>): Ranked[] {
  const m = new Map<string, number>();
  for (const t of texts) m.set(t, (m.get(t) ?? 0) + 1);
  return [...m].map(([text, count]) => ({ text, count })).sort((a, b) => b.count - a.count || a.text.localeCompare(b.text));
}

function zero(): OutcomeCounts {
  return { works: 0, tweaks: 0, wont: 0, error: 0 };
}

/** The whole fleet at a glance, from its result records. */
export function buildReport(results: readonly ImageResult[], store: string): Report {
  const sorted = [...results].sort((a, b) => a.id.localeCompare(b.id));
  const targets = TARGETS.filter((t) => sorted.some((r) => r.targets.some((x) => x.target === t)));
  const byTarget: Report['byTarget'] = {};
  for (const t of targets) {
    const rs = sorted.flatMap((r) => r.targets.filter((x) => x.target === t));
    const counts = zero();
    for (const x of rs) counts[x.outcome]++;
    byTarget[t] = {
      ...counts,
      topTweaks: rank(rs.filter((x) => x.outcome === 'tweaks').flatMap((x) => x.tweaks.map(reasonKind))),
      wontReasons: rank(rs.filter((x) => x.outcome === 'wont').flatMap((x) => x.reasons.map(reasonKind))),
      errors: rank(rs.filter((x) => x.outcome === 'error').map((x) => `${x.error?.code ?? 'error'}: ${reasonKind(x.error?.message ?? x.reasons[0] ?? '')}`)),
    };
  }
  return {
    generated: new Date().toISOString(),
    store,
    totals: { images: sorted.length, done: sorted.filter((r) => r.status === 'done').length, failed: sorted.filter((r) => r.status === 'failed').length },
    targets,
    byTarget,
    breakdowns: {
      distro: breakdown(sorted, (r) => r.guest?.release ?? '(not inspected)'),
      kernel: breakdown(sorted, (r) => defaultKernel(r)),
      aki: breakdown(sorted, (r) => r.meta.aki ?? '(none listed)'),
      class: breakdown(sorted, (r) => r.meta.class ?? '(none listed)'),
    },
    verify: verifySummary(sorted),
    stageSeconds: stageSeconds(sorted),
    images: sorted.map(imageRow),
  };
}

function defaultKernel(r: ImageResult): string {
  const ks = r.guest?.kernels ?? [];
  if (!r.guest) return '(not inspected)';
  if (ks.length === 0) return '(no kernel in the image)';
  const k = ks.find((x) => x.isDefault) ?? ks[0]!;
  return `${k.version}${k.xenOnly ? ' (Xen PV only)' : ''}`;
}

function breakdown(results: readonly ImageResult[], keyOf: (r: ImageResult) => string): BreakdownRow[] {
  const rows = new Map<string, BreakdownRow>();
  for (const r of results) {
    const key = keyOf(r);
    let row = rows.get(key);
    if (!row) rows.set(key, (row = { key, images: 0, targets: {} }));
    row.images++;
    for (const t of r.targets) (row.targets[t.target] ??= zero())[t.outcome]++;
  }
  return [...rows.values()].sort((a, b) => b.images - a.images || a.key.localeCompare(b.key));
}

function verifySummary(results: readonly ImageResult[]): Report['verify'] {
  const vs = results.flatMap((r) => r.targets.flatMap((t) => (t.verify ? [t.verify] : [])));
  const logins = vs.flatMap((v) => (v.login !== undefined ? [v.login] : [])).sort((a, b) => a - b);
  return {
    booted: vs.filter((v) => v.result === 'booted').length,
    failed: vs.filter((v) => v.result === 'failed').length,
    notVerifiable: vs.filter((v) => v.result === 'not-verifiable').length,
    classes: rank(vs.filter((v) => v.result === 'failed').map((v) => v.class ?? 'unknown')),
    loginSeconds: logins.length ? { median: logins[Math.floor(logins.length / 2)]!, max: logins.at(-1)! } : null,
  };
}

function stageSeconds(results: readonly ImageResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) {
    for (const s of r.stages) {
      const kind = s.name.split(':')[0]!;
      out[kind] = Math.round(((out[kind] ?? 0) + s.seconds) * 1000) / 1000;
    }
  }
  return out;
}

function imageRow(r: ImageResult): ImageRow {
  const targets: ImageRow['targets'] = {};
  for (const t of r.targets) {
    const why = t.outcome === 'tweaks' ? t.tweaks.join('; ') : t.outcome === 'error' ? (t.error?.message ?? '') : t.reasons.join('; ');
    targets[t.target] = {
      outcome: t.outcome,
      why,
      ...(t.output ? { output: t.output.key } : {}),
      ...(t.output?.bundle ? { register: t.output.bundle.register } : {}),
      ...(t.verify ? { verify: t.verify.result === 'booted' ? `booted${t.verify.login !== undefined ? ` (login ${t.verify.login} s)` : ''}` : `${t.verify.result}${t.verify.class ? ` (${t.verify.class})` : ''}` } : {}),
    };
  }
  return {
    id: r.id,
    status: r.status,
    distro: r.guest?.release ?? '',
    kernel: r.guest ? defaultKernel(r) : '',
    aki: r.meta.aki ?? '',
    class: r.meta.class ?? '',
    arch: r.guest?.arch ?? r.meta.arch ?? '',
    seconds: r.seconds,
    record: resultKey(r.id),
    targets,
  };
}

/** Build the report from every result record in the store and put report.json and report.html beside them. */
export async function writeReport(store: import('./store.js').FleetStore, results: readonly ImageResult[]): Promise<Report> {
  const { renderReportHtml } = await import('./html.js');
  const report = buildReport(results, store.name);
  await store.putText('report.json', `${JSON.stringify(report, null, 2)}\n`);
  await store.putText('report.html', renderReportHtml(report));
  return report;
}
