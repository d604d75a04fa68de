import type { Change, Target, Verdict } from '@amitrans/guest';

/** A named pipeline stage and how long it took. */
export interface StageRecord {
  name: string;
  seconds: number;
  ok: boolean;
  /** What the stage did, in a few words (skipped: already delivered). */
  note?: string;
}

/**
 * Where a target landed, the report's four columns:
 * works (boots as it is), tweaks (boots after translation), wont (will not boot, and why),
 * error (the pipeline failed: a corrupt or missing image, a refusal while translating).
 */
export type Outcome = 'works' | 'tweaks' | 'wont' | 'error';

export interface ErrorRecord {
  code: string;
  message: string;
  /** Worth another try (network, S3 5xx, a killed worker); never a deterministic refusal. */
  transient: boolean;
}

export interface OutputRecord {
  /** Key under the store (images/<id>/<id>-<target>.<ext>). */
  key: string;
  format: string;
  size: number;
  sha256: string;
  /** new: delivered by this run; existing: found whole at its key (a rerun or a taken-over job). */
  delivery: 'new' | 'existing';
  /** An EMI bundle (format bundle): `key`, size and sha256 are its manifest's, written last. */
  bundle?: BundleRecord;
}

/** An EMI bundle's kernel and ramdisk bundles, and how to register the three. */
export interface BundleRecord {
  /** Keys of the EKI's and the ERI's manifests, beside the EMI's. */
  kernel: string;
  ramdisk: string;
  /** Bytes of the image inside the EMI bundle, and of the three bundles' parts. */
  imageSize: number;
  bundledSize: number;
  signed: boolean;
  /** euca-register and aws ec2 register-image commands, the EKI and ERI first. */
  register: string[];
}

export interface VerifyRecord {
  result: 'booted' | 'failed' | 'not-verifiable';
  class?: string;
  detail?: string;
  seconds: number;
  /** Seconds from QEMU's start to the login prompt (or the expected line). */
  login?: number;
  milestones: { name: string; seconds: number }[];
}

export interface TargetResult {
  target: Target;
  outcome: Outcome;
  verdict?: Verdict['status'];
  bus?: string;
  kernel?: string;
  /** What translation changes (the verdict's list): the "tweaks". */
  tweaks: string[];
  /** Why it will not boot, or caveats. */
  reasons: string[];
  /** The change report of the translation. */
  changes?: Change[];
  output?: OutputRecord;
  verify?: VerifyRecord;
  error?: ErrorRecord;
}

export interface GuestSummary {
  distro: string;
  release: string;
  arch: string;
  layout: string;
  kernels: { version: string; xenOnly: boolean; isDefault: boolean }[];
}

/** One image's result record: results/<id>.json, written last, so its presence means done. */
export interface ImageResult {
  id: string;
  source: string | null;
  /** done: every target reached a verdict or an output; failed: something erred (retry with --retry-failed). */
  status: 'done' | 'failed';
  meta: { class?: string; aki?: string; arch?: string };
  guest?: GuestSummary;
  targets: TargetResult[];
  stages: StageRecord[];
  /** An error that stopped the whole image (open, inspect). */
  error?: ErrorRecord;
  worker: string;
  started: string;
  seconds: number;
  /** Which try this was (a queue's retries and take-overs count). */
  attempt: number;
  /**
   * Seconds of this image's time the fleet itself took before this record: store checks
   * (delivered already?) and journal writes (events, change reports). The record's own write
   * is in the run's or worker's times.
   */
  overhead?: { store: number; journal: number };
}

export const RESULTS = 'results/';

export function resultKey(id: string): string {
  return `${RESULTS}${id}.json`;
}
