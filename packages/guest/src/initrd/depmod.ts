import { ImageError } from '@amitrans/block';
import { moduleName } from './contents.js';
import { writeKmodIndex, type IndexEntry } from './kmodindex.js';

/**
 * What depmod writes for a set of modules, made from the full set's depmod output (the
 * guest's /lib/modules/<kver>/modules.*) without running depmod: a subset closed under
 * dependencies has the same dependency lines, and depmod orders modules by modules.order,
 * which the guest's files already follow, so filtering them gives what depmod would write.
 */
export interface DepmodTexts {
  dep: string;
  alias?: string;
  softdep?: string;
  symbols?: string;
  devname?: string;
}

export interface DepLine {
  /** Module path relative to lib/modules/<kver>, as stored (.ko, .ko.xz, .ko.zst). */
  path: string;
  name: string;
  deps: string[];
}

/** modules.dep: "kernel/a.ko: kernel/b.ko kernel/c.ko" per line, comments and blanks ignored. */
export function parseModulesDep(text: string, where = 'modules.dep'): DepLine[] {
  const out: DepLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const path = colon > 0 ? line.slice(0, colon).trim() : '';
    const name = moduleName(path);
    if (name === undefined || path.includes('\0')) {
      throw new ImageError('E_CORRUPT', `${where} line ${i + 1}: not "path: deps" (${JSON.stringify(line.slice(0, 80))})`, { structure: 'modules.dep' });
    }
    out.push({ path, name, deps: line.slice(colon + 1).split(/\s+/).filter((d) => d !== '') });
  });
  return out;
}

/** softdep lines: "softdep ext4 pre: crc32c post: x" -> ext4 -> [crc32c, x]. */
export function parseSoftdeps(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const words = raw.replace(/#.*/, '').trim().split(/\s+/);
    if (words[0] !== 'softdep' || words.length < 3) continue;
    const mod = moduleName(words[1]!);
    if (mod === undefined) continue;
    const names = words.slice(2).filter((w) => w !== 'pre:' && w !== 'post:').map((w) => moduleName(w)).filter((n): n is string => n !== undefined);
    out.set(mod, [...(out.get(mod) ?? []), ...names]);
  }
  return out;
}

/**
 * The modules to add for `wanted` (module names), with everything they depend on (hard
 * dependencies from modules.dep and soft ones from modules.softdep when present), in load
 * order: each module after its dependencies. Unknown names are returned in `missing`.
 */
export function closure(lines: readonly DepLine[], wanted: readonly string[], softdeps = new Map<string, string[]>()): { order: DepLine[]; missing: string[] } {
  const byName = new Map(lines.map((l) => [l.name, l]));
  const byPath = new Map(lines.map((l) => [l.path, l]));
  const order: DepLine[] = [];
  const seen = new Set<string>();
  const missing: string[] = [];
  const visit = (l: DepLine, depth: number): void => {
    if (seen.has(l.path) || depth > 1000) return;
    seen.add(l.path);
    // modules.dep lists all dependencies, direct and indirect: loading them last-to-first works.
    for (const d of [...l.deps].reverse()) {
      const dl = byPath.get(d);
      if (dl) visit(dl, depth + 1);
    }
    for (const s of softdeps.get(l.name) ?? []) {
      const sl = byName.get(s);
      if (sl) visit(sl, depth + 1);
    }
    order.push(l);
  };
  for (const w of wanted) {
    const name = moduleName(w) ?? w;
    const l = byName.get(name);
    if (l) visit(l, 0);
    else missing.push(w);
  }
  return { order, missing };
}

/** Keep the lines of a depmod text file whose module (the word at `column`) is in `names`. */
function filterLines(text: string | undefined, names: ReadonlySet<string>, column: number, header: string, headerIfEmpty = true): string | undefined {
  if (text === undefined) return undefined;
  const kept = text.split('\n').filter((l) => {
    if (l.trim() === '' || l.startsWith('#')) return false;
    const w = l.trim().split(/\s+/)[column];
    return w !== undefined && names.has(moduleName(w) ?? w);
  });
  return (kept.length > 0 || headerIfEmpty ? header : '') + kept.map((l) => l + '\n').join('');
}

/** depmod's alias_normalize: '-' becomes '_' outside [...] ranges. */
export function normaliseAlias(alias: string): string {
  let out = '';
  let inRange = false;
  for (const c of alias) {
    if (c === '[') inRange = true;
    else if (c === ']') inRange = false;
    out += c === '-' && !inRange ? '_' : c;
  }
  return out;
}

function aliasEntries(text: string | undefined, idx: ReadonlyMap<string, number>, normalise: boolean): IndexEntry[] {
  const out: IndexEntry[] = [];
  for (const l of text?.split('\n') ?? []) {
    const w = l.trim().split(/\s+/);
    if (w[0] !== 'alias' || w.length < 3) continue;
    const priority = idx.get(w[2]!);
    if (priority === undefined) continue;
    out.push({ key: normalise ? normaliseAlias(w[1]!) : w[1]!, value: w[2]!, priority });
  }
  return out;
}

export interface DepmodOutput {
  /** File name in lib/modules/<kver> -> content. */
  files: Map<string, Uint8Array>;
}

const enc = new TextEncoder();

/**
 * depmod's output files for exactly the modules at `paths` (paths relative to
 * lib/modules/<kver>): modules.dep and .bin, and, when the guest has them, modules.alias,
 * modules.softdep, modules.symbols, modules.devname and the alias/symbol .bin indexes.
 * Lines come from `guest` (the full set's files), falling back to `fallbackDep` (the initrd's
 * own modules.dep) for a module the guest's files lack.
 */
export function depmodFor(paths: readonly string[], guest: DepmodTexts, fallbackDep?: string): DepmodOutput {
  const want = new Set(paths);
  const guestLines = parseModulesDep(guest.dep, 'the guest modules.dep');
  const lines = guestLines.filter((l) => want.has(l.path));
  const have = new Set(lines.map((l) => l.path));
  for (const l of fallbackDep ? parseModulesDep(fallbackDep, 'the initrd modules.dep') : []) {
    if (want.has(l.path) && !have.has(l.path)) {
      lines.push(l);
      have.add(l.path);
    }
  }
  const unknown = paths.filter((p) => !have.has(p));
  if (unknown.length > 0) throw new ImageError('E_CORRUPT', `no modules.dep line for ${unknown.slice(0, 5).join(', ')}`, { structure: 'modules.dep' });
  const idx = new Map(lines.map((l, i) => [l.name, i]));
  const names = new Set(idx.keys());
  const depText = lines.map((l) => `${l.path}:${l.deps.map((d) => ` ${d}`).join('')}\n`).join('');
  const files = new Map<string, Uint8Array>();
  files.set('modules.dep', enc.encode(depText));
  files.set('modules.dep.bin', writeKmodIndex(lines.map((l, i) => ({ key: l.name, value: `${l.path}:${l.deps.map((d) => ` ${d}`).join('')}`, priority: i }))));
  const alias = filterLines(guest.alias, names, 2, '# Aliases extracted from modules themselves.\n');
  if (alias !== undefined) {
    files.set('modules.alias', enc.encode(alias));
    files.set('modules.alias.bin', writeKmodIndex(aliasEntries(alias, idx, true)));
  }
  const symbols = filterLines(guest.symbols, names, 2, '# Aliases for symbols, used by symbol_request().\n');
  if (symbols !== undefined) {
    files.set('modules.symbols', enc.encode(symbols));
    files.set('modules.symbols.bin', writeKmodIndex(aliasEntries(symbols, idx, false)));
  }
  const softdep = filterLines(guest.softdep, names, 1, '# Soft dependencies extracted from modules themselves.\n');
  if (softdep !== undefined) files.set('modules.softdep', enc.encode(softdep));
  const devname = filterLines(guest.devname, names, 0, '# Device nodes to trigger on-demand module loading.\n', false);
  if (devname !== undefined) files.set('modules.devname', enc.encode(devname));
  return { files };
}
