export { FleetError, type FleetErrorCode } from './errors.js';
export { readWorklist, parseWorklist, MAX_WORKLIST_BYTES, type FleetItem, type WorklistOptions } from './worklist.js';
export { openStore, type FleetStore, type StoredObject } from './store.js';
export { processImage, recordFailure, outputKey, formatFor, BUNDLE, workerName, errorRecord, transient, DEFAULT_FORMATS, type PipelineOptions, type SharedTranslateOptions } from './pipeline.js';
export { runFleet, loadResults, defaultConcurrency, type RunOptions, type RunSummary } from './pool.js';
export { buildReport, writeReport, reasonKind, OUTCOMES, type Report, type TargetSummary, type BreakdownRow, type ImageRow, type Ranked, type OutcomeCounts } from './report.js';
export { renderReportHtml, esc } from './html.js';
export { submitFleet, runWorker, queueStatus, redactUrl, DEFAULT_QUEUE, type FleetJobData, type QueueOptions, type SubmitOptions, type SubmitSummary, type WorkerOptions, type WorkerSummary, type QueueStatus } from './queue.js';
export { resultKey, RESULTS, type ImageResult, type TargetResult, type StageRecord, type Outcome, type OutputRecord, type BundleRecord, type VerifyRecord, type ErrorRecord, type GuestSummary } from './record.js';
