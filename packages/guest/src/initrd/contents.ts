import { entryType, type CpioFormat, type CpioMember, type CpioVisitor, type EntryType } from './cpio.js';

export type InitrdCompression = 'none' | 'gzip' | 'xz' | 'lzma' | 'bzip2' | 'zstd' | 'lz4';

/** newc/crc are what the kernel reads; odc and binary come from old tools; ext2 is an old-style initrd image. */
export type InitrdArchive = 'newc' | 'crc' | 'odc' | 'binary' | 'ext2' | 'unknown';

export type InitrdFlavour = 'nash' | 'dracut' | 'initramfs-tools' | 'busybox' | 'unknown';

export interface InitrdSegment {
  /** File offset where the segment starts (its cpio magic or compression magic). */
  offset: number;
  /** Bytes of the file the segment takes, when its end could be found. */
  length?: number;
  compression: InitrdCompression;
  archive: InitrdArchive;
  /** Bytes the segment decompressed to (for 'none': the archive's length), as far as read. */
  decompressedBytes: number;
  /** Members listed from this segment (trailers not counted). */
  entries: number;
}

export interface InitrdEntry {
  /** The member's name made absolute and resolved lexically ("./init" and "init" are "/init"; ".." stops at "/"). */
  path: string;
  type: EntryType;
  /** Size from the header: file data length, or the symlink target's length. */
  size: number;
  mode: number;
  /** Index into `segments`. */
  segment: number;
  linkTarget?: string;
}

export interface InitrdModule {
  /** Module name as modprobe spells it: file name without .ko / .ko.xz / .o ..., '-' → '_'. */
  name: string;
  path: string;
  /** The <ver> of lib/modules/<ver>/ it sits under, if any (nash initrds keep modules in /lib). */
  kernelVersion?: string;
}

export type ModuleListKind = 'init-script' | 'etc-modules' | 'conf-modules' | 'modules-load.d' | 'modules.dep';

export interface ModuleList {
  /** The file the list was read from. */
  path: string;
  kind: ModuleListKind;
  /** Normalised module names, in file order, without duplicates. */
  modules: string[];
}

export interface InitrdContents {
  /** Size of the initrd file. */
  size: number;
  segments: InitrdSegment[];
  entries: InitrdEntry[];
  /** Module files found (*.ko, *.ko.xz, *.ko.zst, *.ko.gz anywhere; *.o under lib/modules/<ver>/). */
  modules: InitrdModule[];
  /** Sorted, unique names of `modules`. */
  moduleNames: string[];
  /** The <ver> directories under lib/modules/ and usr/lib/modules/, sorted. */
  kernelVersions: string[];
  flavour: InitrdFlavour;
  /** Modules named in /init (insmod, modprobe), etc/modules, conf/modules, modules-load.d and modules.dep. */
  moduleLists: ModuleList[];
  /** The small text files that were read (/init, module lists), by path; possibly cut at the text cap. */
  textFiles: Record<string, string>;
  /** True when reading stopped before the end of the file (damage, a limit, an unknown format). */
  incomplete: boolean;
  warnings: string[];
}

export interface InitrdLimits {
  /** Stop after this many decompressed bytes in total (default 1 GiB). */
  maxDecompressedBytes: number;
  /** Stop listing after this many members (default 200,000). */
  maxEntries: number;
  /** Read at most this much of one text file (default 1 MiB; modules.dep gets 4x). */
  maxTextFileBytes: number;
  /** Read at most this much text in total (default 16 MiB). */
  maxTextBytes: number;
}

export const DEFAULT_INITRD_LIMITS: InitrdLimits = {
  maxDecompressedBytes: 1024 * 1024 * 1024,
  maxEntries: 200_000,
  maxTextFileBytes: 1024 * 1024,
  maxTextBytes: 16 * 1024 * 1024,
};

const MAX_WARNINGS = 100;
const MAX_NAME_WARNINGS = 10;
const MAX_LINK = 4096;

/** "./a/../b", "b" and "/b" are all "/b"; ".." never climbs above "/". */
export function normaliseMemberName(name: string): { path: string; absolute: boolean; escapes: boolean } {
  const parts: string[] = [];
  let escapes = false;
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (parts.length > 0) parts.pop();
      else escapes = true;
      continue;
    }
    parts.push(p);
  }
  return { path: '/' + parts.join('/'), absolute: name.startsWith('/'), escapes };
}

const MODULE_FILE = /\.(ko|ko\.xz|ko\.zst|ko\.gz|ko\.bz2|o)$/;
const MODULE_DIR = /^\/(?:usr\/)?lib\/modules\/([^/]+)(?:\/|$)/;
const MODULE_NAME = /^[A-Za-z0-9_-]+$/;

/** modprobe's name for a module file or a name written in a list: basename, no suffix, '-' → '_'. */
export function moduleName(pathOrName: string): string | undefined {
  const base = pathOrName.slice(pathOrName.lastIndexOf('/') + 1).replace(MODULE_FILE, '');
  if (!MODULE_NAME.test(base)) return undefined;
  return base.replace(/-/g, '_');
}

/** Which small files are read, and as what. */
function textKind(path: string): ModuleListKind | 'init' | 'marker' | undefined {
  if (path === '/init' || path === '/linuxrc') return 'init';
  if (path === '/etc/modules') return 'etc-modules';
  if (path === '/conf/modules') return 'conf-modules';
  if (/^\/(?:usr\/)?(?:lib|etc)\/modules-load\.d\/[^/]+$/.test(path)) return 'modules-load.d';
  if (/^\/(?:usr\/)?lib\/modules\/[^/]+\/modules\.dep$/.test(path)) return 'modules.dep';
  // Read whole so an appended segment can send a full replacement (dracut's extra command line).
  if (path === '/conf/initramfs.conf' || path === '/etc/cmdline' || /^\/etc\/cmdline\.d\/[^/]+$/.test(path)) return 'marker';
  return undefined;
}

/** Gathers what the walker reports into InitrdContents, bounded by InitrdLimits. */
export class Collector implements CpioVisitor {
  readonly segments: InitrdSegment[] = [];
  readonly entries: InitrdEntry[] = [];
  readonly warnings: string[] = [];
  readonly textFiles: Record<string, string> = {};
  readonly kernelVersions = new Set<string>();
  readonly modules: InitrdModule[] = [];
  incomplete = false;
  /** Set when a limit says to read no further. */
  stopped = false;
  private textBytes = 0;
  private droppedWarnings = 0;
  private nameWarnings = 0;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  private current: { index: number; path: string; type: EntryType } | undefined;

  constructor(readonly limits: InitrdLimits) {}

  warn(message: string): void {
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(message);
    else this.droppedWarnings++;
  }

  addSegment(segment: InitrdSegment): number {
    this.segments.push(segment);
    return this.segments.length - 1;
  }

  get segment(): InitrdSegment {
    return this.segments[this.segments.length - 1]!;
  }

  /** The archive format of the current segment, named the way InitrdSegment names it. */
  setArchive(format: CpioFormat): void {
    if (this.segment.archive === 'unknown') this.segment.archive = format.startsWith('binary') ? 'binary' : (format as InitrdArchive);
  }

  member(m: CpioMember): number | false {
    if (this.entries.length >= this.limits.maxEntries) {
      this.warn(`stopped listing after ${this.limits.maxEntries} members`);
      this.incomplete = true;
      this.stopped = true;
      return false;
    }
    this.setArchive(m.header.format);
    const { path, absolute, escapes } = normaliseMemberName(m.name);
    if ((absolute || escapes) && this.nameWarnings++ < MAX_NAME_WARNINGS) {
      this.warn(`member name ${JSON.stringify(m.name.slice(0, 200))} is ${escapes ? 'climbing out of the archive root' : 'absolute'}; listed as ${path.slice(0, 200)}`);
    }
    const type = entryType(m.header.mode);
    const segment = this.segments.length - 1;
    this.entries.push({ path, type, size: m.header.fileSize, mode: m.header.mode, segment });
    this.segment.entries++;
    this.noteModule(path, type);
    this.current = { index: this.entries.length - 1, path, type };
    if (type === 'symlink') return Math.min(m.header.fileSize, MAX_LINK);
    if (type !== 'file' || textKind(path) === undefined) return 0;
    const cap = textKind(path) === 'modules.dep' ? this.limits.maxTextFileBytes * 4 : this.limits.maxTextFileBytes;
    this.textFiles[path] = ''; // a zero-length list is still a list
    const want = Math.min(m.header.fileSize, cap, this.limits.maxTextBytes - this.textBytes);
    if (want < m.header.fileSize) this.warn(`read only the first ${Math.max(0, want)} of ${m.header.fileSize} bytes of ${path}`);
    return Math.max(0, want);
  }

  data(_m: CpioMember, data: Uint8Array, _complete: boolean): void {
    const cur = this.current;
    if (cur === undefined) return;
    const text = this.decoder.decode(data);
    if (cur.type === 'symlink') {
      this.entries[cur.index]!.linkTarget = text;
      return;
    }
    this.textBytes += data.length;
    this.textFiles[cur.path] = text;
  }

  private noteModule(path: string, type: EntryType): void {
    const dir = MODULE_DIR.exec(path);
    if (dir) this.kernelVersions.add(dir[1]!);
    if (type !== 'file' && type !== 'symlink') return;
    if (!MODULE_FILE.test(path)) return;
    if (path.endsWith('.o') && !dir) return;
    const name = moduleName(path);
    if (name === undefined) return;
    this.modules.push(dir ? { name, path, kernelVersion: dir[1]! } : { name, path });
  }

  finish(size: number): InitrdContents {
    if (this.droppedWarnings > 0) this.warnings.push(`${this.droppedWarnings} more warnings were left out`);
    const moduleNames = [...new Set(this.modules.map((m) => m.name))].sort();
    return {
      size,
      segments: this.segments,
      entries: this.entries,
      modules: this.modules,
      moduleNames,
      kernelVersions: [...this.kernelVersions].sort(),
      flavour: detectFlavour(this.entries, this.textFiles),
      moduleLists: moduleLists(this.textFiles),
      textFiles: this.textFiles,
      incomplete: this.incomplete,
      warnings: this.warnings,
    };
  }
}

/**
 * The boot-relevant digest inspection keeps: module files present (normalised names),
 * flavour and warnings. Structurally the same as @amitrans/guest's InitrdSummary.
 */
export function summariseInitrd(c: InitrdContents): { modules: string[]; flavour: InitrdFlavour; warnings: string[] } {
  return { modules: c.moduleNames, flavour: c.flavour, warnings: c.warnings };
}

/** The last member with each path wins, as when the kernel unpacks over earlier ones. */
function lastByPath(entries: readonly InitrdEntry[]): Map<string, InitrdEntry> {
  const map = new Map<string, InitrdEntry>();
  for (const e of entries) map.set(e.path, e);
  return map;
}

export function detectFlavour(entries: readonly InitrdEntry[], textFiles: Readonly<Record<string, string>>): InitrdFlavour {
  const byPath = lastByPath(entries);
  const init = byPath.get('/init');
  const initText = init?.type === 'file' ? (textFiles['/init'] ?? '') : '';
  if (/^#!\s*\/s?bin\/nash\b/.test(initText)) return 'nash';
  let dracut = /\bdracut\b/.test(initText);
  let initramfsTools = /initramfs-tools|\/scripts\/functions|\/conf\/initramfs\.conf/.test(initText);
  for (const path of byPath.keys()) {
    if (/^\/(?:usr\/)?lib\/dracut(?:\/|$)/.test(path) || /\/dracut-[^/]*$/.test(path)) dracut = true;
    if (path === '/conf/initramfs.conf' || path === '/scripts/local' || path === '/scripts/functions') initramfsTools = true;
  }
  if (dracut) return 'dracut';
  if (initramfsTools) return 'initramfs-tools';
  if (init === undefined) return 'unknown';
  const target = init.linkTarget ?? '';
  if (/\bbusybox\b/.test(initText) || /(?:^|\/)busybox$/.test(target)) return 'busybox';
  if (byPath.has('/bin/busybox') || byPath.has('/sbin/busybox') || byPath.has('/usr/bin/busybox')) return 'busybox';
  return 'unknown';
}

function unique(names: Iterable<string | undefined>): string[] {
  const out = new Set<string>();
  for (const n of names) if (n !== undefined) out.add(n);
  return [...out];
}

/** Modules an init script loads: `insmod /lib/xenblk.ko`, `modprobe -q virtio_blk`. Names built from variables are skipped. */
export function initScriptModules(text: string): string[] {
  const found: (string | undefined)[] = [];
  for (const line of text.split('\n')) {
    const code = line.replace(/#.*/, '');
    const words = code.split(/[\s;|&()]+/).filter((w) => w !== '');
    for (let i = 0; i < words.length; i++) {
      const cmd = words[i]!.slice(words[i]!.lastIndexOf('/') + 1);
      if (cmd !== 'insmod' && cmd !== 'modprobe') continue;
      let j = i + 1;
      while (j < words.length && words[j]!.startsWith('-')) j++;
      const arg = words[j];
      if (arg === undefined || /[$`"'*?]/.test(arg)) continue;
      found.push(moduleName(arg));
    }
  }
  return unique(found);
}

/** etc/modules, conf/modules, modules-load.d: one module per line, arguments after it, # or ; comments. */
export function listFileModules(text: string): string[] {
  return unique(
    text.split('\n').map((line) => {
      const word = line.replace(/[#;].*/, '').trim().split(/\s+/)[0] ?? '';
      return word === '' || word.includes('/') ? undefined : moduleName(word);
    }),
  );
}

/** modules.dep: "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko ..."; the modules are the keys. */
export function modulesDepModules(text: string): string[] {
  return unique(
    text.split('\n').map((line) => {
      const colon = line.indexOf(':');
      return colon > 0 ? moduleName(line.slice(0, colon).trim()) : undefined;
    }),
  );
}

function moduleLists(textFiles: Readonly<Record<string, string>>): ModuleList[] {
  const lists: ModuleList[] = [];
  for (const [path, text] of Object.entries(textFiles)) {
    const kind = textKind(path);
    if (kind === undefined || kind === 'marker') continue;
    if (kind === 'init') {
      const modules = initScriptModules(text);
      if (modules.length > 0) lists.push({ path, kind: 'init-script', modules });
    } else if (kind === 'modules.dep') {
      lists.push({ path, kind, modules: modulesDepModules(text) });
    } else {
      lists.push({ path, kind, modules: listFileModules(text) });
    }
  }
  return lists.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
