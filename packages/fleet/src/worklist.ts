import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isRemote } from '@amitrans/remote';
import { TARGETS, type Target } from '@amitrans/guest';
import { FleetError } from './errors.js';

/** One image of the fleet: where it is and the targets it is translated for. */
export interface FleetItem {
  id: string;
  /** A local path (absolute), s3:// or http(s):// URL; undefined when the list names none we can read. */
  source: string | undefined;
  targets: Target[];
  /** Why there is no source (an EBS snapshot), for the result record. */
  sourceNote?: string;
  /** What the catalog knew: carried into the report's breakdowns. */
  meta: { class?: string; aki?: string; arch?: string };
  /** 1-based line of the work list, for messages. */
  line: number;
}

/**
 * A work list is read whole: thousands of lines of a few hundred bytes. Anything much larger
 * is not a work list, and reading it would only cost memory.
 */
export const MAX_WORKLIST_BYTES = 64 * 1024 * 1024;
const MAX_LINE = 64 * 1024;

/**
 * Job ids are image ids: BullMQ refuses `:` and all-digit ids (fleet.md §4.1), and ids become
 * file and object names, so only a conservative alphabet is accepted.
 */
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface WorklistOptions {
  /** Targets for lines that name none (default: all four). */
  targets?: readonly Target[];
  /** Relative local sources are resolved from here (default: the work list's directory). */
  baseDir?: string;
}

/** Read a work list file: the catalog's `--worklist` JSON lines, fleet JSON lines, or CSV. */
export async function readWorklist(path: string, o: WorklistOptions = {}): Promise<FleetItem[]> {
  const size = (await stat(path)).size;
  if (size > MAX_WORKLIST_BYTES) throw new FleetError('E_WORKLIST', `${path}: ${size} bytes is more than a work list holds (at most ${MAX_WORKLIST_BYTES})`);
  const text = await readFile(path, 'utf8');
  return parseWorklist(text, path, { baseDir: dirname(resolve(path)), ...o });
}

/** Parse work list text; `name` is used in messages. */
export function parseWorklist(text: string, name: string, o: WorklistOptions = {}): FleetItem[] {
  if (text.length > MAX_WORKLIST_BYTES) throw new FleetError('E_WORKLIST', `${name}: more than a work list holds (at most ${MAX_WORKLIST_BYTES} bytes)`);
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const first = lines.findIndex((l) => l.trim() !== '');
  if (first < 0) throw new FleetError('E_WORKLIST', `${name}: the work list is empty`);
  const items = lines[first]!.trimStart().startsWith('{') ? jsonLines(lines, name, o) : csvLines(lines, first, name, o);
  const seen = new Map<string, number>();
  for (const item of items) {
    const before = seen.get(item.id);
    if (before !== undefined) throw new FleetError('E_WORKLIST', `${name}:${item.line}: image ${item.id} is listed twice (first at line ${before})`);
    seen.set(item.id, item.line);
  }
  return items;
}

function jsonLines(lines: string[], name: string, o: WorklistOptions): FleetItem[] {
  const items: FleetItem[] = [];
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    const where = `${name}:${i + 1}`;
    checkLength(text, where);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new FleetError('E_WORKLIST', `${where}: not JSON (${(err as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FleetError('E_WORKLIST', `${where}: expected a JSON object per line`);
    items.push(fromFields(value as Record<string, unknown>, where, i + 1, o));
  });
  return items;
}

function csvLines(lines: string[], headerAt: number, name: string, o: WorklistOptions): FleetItem[] {
  checkLength(lines[headerAt]!, `${name}:${headerAt + 1}`);
  const header = csvRow(lines[headerAt]!, `${name}:${headerAt + 1}`).map((h) => h.trim().toLowerCase());
  if (!header.includes('id')) throw new FleetError('E_WORKLIST', `${name}:${headerAt + 1}: not a work list: expected JSON lines or CSV with a header naming id, source and targets`);
  const items: FleetItem[] = [];
  for (let i = headerAt + 1; i < lines.length; i++) {
    const text = lines[i]!;
    if (text.trim() === '') continue;
    const where = `${name}:${i + 1}`;
    checkLength(text, where);
    const cells = csvRow(text, where);
    if (cells.length !== header.length) throw new FleetError('E_WORKLIST', `${where}: ${cells.length} cells, the header has ${header.length}`);
    const fields: Record<string, unknown> = {};
    header.forEach((h, c) => (fields[h] = cells[c] === '' ? undefined : cells[c]));
    if (typeof fields.targets === 'string') fields.targets = fields.targets.split(/[\s;|]+/).filter(Boolean);
    items.push(fromFields(fields, where, i + 1, o));
  }
  return items;
}

/** One CSV record on one line (RFC 4180 quoting; a quoted line break is not supported). */
function csvRow(text: string, where: string): string[] {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    let cell = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new FleetError('E_WORKLIST', `${where}: unterminated quoted cell`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            cell += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        cell += text[i++];
      }
      if (i < text.length && text[i] !== ',') throw new FleetError('E_WORKLIST', `${where}: text after a quoted cell at column ${i + 1}`);
    } else {
      const end = text.indexOf(',', i);
      cell = text.slice(i, end < 0 ? text.length : end);
      if (cell.includes('"')) throw new FleetError('E_WORKLIST', `${where}: a quote inside an unquoted cell at column ${i + 1}`);
      i = end < 0 ? text.length : end;
    }
    cells.push(cell);
    if (i >= text.length) return cells;
    i++; // the comma
  }
}

function checkLength(text: string, where: string): void {
  if (text.length > MAX_LINE) throw new FleetError('E_WORKLIST', `${where}: a line of ${text.length} characters (at most ${MAX_LINE})`);
}

/** Fleet fields ({id, source, targets}) or the catalog's ({id, location, snapshot, class, arch, pvgrub, targets}). */
function fromFields(f: Record<string, unknown>, where: string, line: number, o: WorklistOptions): FleetItem {
  const id = f.id;
  if (typeof id !== 'string' || !ID.test(id) || /^[0-9]+$/.test(id)) {
    throw new FleetError('E_WORKLIST', `${where}: id ${JSON.stringify(id)}: expected letters, digits, '.', '_' or '-' (not only digits, at most 128)`);
  }
  const item: FleetItem = { id, source: undefined, targets: targetsOf(f.targets, where, o), meta: {}, line };
  const text = (k: string): string | undefined => {
    const v = f[k];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new FleetError('E_WORKLIST', `${where}: ${k} must be a string`);
    return v;
  };
  const source = text('source');
  const location = text('location');
  const snapshot = text('snapshot');
  if (source !== undefined) item.source = isRemote(source) || isAbsolute(source) ? source : resolve(o.baseDir ?? '.', source);
  // The catalog's location is a manifest's bucket/key (instance-store AMIs).
  else if (location !== undefined) item.source = /^[a-z0-9][a-z0-9.-]+\/.+/.test(location) ? `s3://${location}` : location;
  else if (snapshot !== undefined) item.sourceNote = `EBS snapshot ${snapshot}: the fleet reads images and bundles, not snapshots (export it to S3 and list it as source)`;
  else item.sourceNote = 'the work list names no source, location or snapshot';
  const pvgrub = f.pvgrub as { aki?: unknown } | undefined;
  const meta = { class: text('class'), aki: text('aki') ?? (typeof pvgrub?.aki === 'string' ? pvgrub.aki : undefined), arch: text('arch') };
  for (const [k, v] of Object.entries(meta)) if (v !== undefined) item.meta[k as keyof FleetItem['meta']] = v;
  return item;
}

function targetsOf(value: unknown, where: string, o: WorklistOptions): Target[] {
  if (value === undefined || value === null) return [...(o.targets ?? TARGETS)];
  const list = typeof value === 'string' ? value.split(/[\s,;|]+/).filter(Boolean) : value;
  if (!Array.isArray(list) || list.length === 0) throw new FleetError('E_WORKLIST', `${where}: targets must be a non-empty list`);
  const out: Target[] = [];
  for (const t of list) {
    if (typeof t !== 'string' || !(TARGETS as readonly string[]).includes(t)) {
      throw new FleetError('E_WORKLIST', `${where}: unknown target ${JSON.stringify(t)} (known: ${TARGETS.join(', ')})`);
    }
    if (!out.includes(t as Target)) out.push(t as Target);
  }
  return out;
}
