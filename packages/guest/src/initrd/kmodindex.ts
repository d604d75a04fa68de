import { ImageError } from '@amitrans/block';

/**
 * kmod's binary index (modules.dep.bin, modules.alias.bin, modules.symbols.bin, ...): a
 * trie stored children-first, read by libkmod-index.c. modprobe opens only these files
 * (there is no fallback to the text modules.dep), so an initrd that gains modules needs
 * them regenerated.
 *
 *   header:  u32 magic 0xB007F457, u32 version 0x00020001, u32 root node offset (big-endian)
 *   node:    [prefix string NUL]                     when offset has INDEX_NODE_PREFIX
 *            [u8 first, u8 last, u32 child[last-first+1]] when INDEX_NODE_CHILDS
 *            [u32 count, {u32 priority, value NUL} * count] when INDEX_NODE_VALUES
 * A node offset's top bits carry those three flags; the low 28 bits are the file offset.
 */
export const INDEX_MAGIC = 0xb007f457;
export const INDEX_VERSION = 0x00020001;
export const INDEX_NODE_PREFIX = 0x80000000;
export const INDEX_NODE_VALUES = 0x40000000;
export const INDEX_NODE_CHILDS = 0x20000000;
export const INDEX_NODE_MASK = 0x0fffffff;
/** Keys are 7-bit ASCII: depmod refuses anything else. */
const INDEX_CHILDMAX = 128;

export interface IndexValue {
  value: string;
  priority: number;
}

export interface IndexEntry extends IndexValue {
  key: string;
}

interface TrieNode {
  prefix: string;
  values: IndexValue[];
  children: Map<number, TrieNode>;
}

function newNode(prefix: string): TrieNode {
  return { prefix, values: [], children: new Map() };
}

/** Values of one key are kept in priority order (equal priorities: first inserted first), duplicates dropped. */
function addValue(node: TrieNode, v: IndexValue): void {
  if (node.values.some((x) => x.value === v.value)) return;
  let at = 0;
  while (at < node.values.length && node.values[at]!.priority < v.priority) at++;
  // depmod inserts before the first value whose priority is not lower.
  node.values.splice(at, 0, v);
}

/** Insert as depmod's index_insert does: a node's prefix is split where the key departs from it. */
function insert(root: TrieNode, key: string, v: IndexValue): void {
  let node = root;
  let i = 0;
  for (;;) {
    let j = 0;
    while (j < node.prefix.length && i + j < key.length && node.prefix.charCodeAt(j) === key.charCodeAt(i + j)) j++;
    if (j < node.prefix.length) {
      // Split: the tail of the prefix moves into a child.
      const tail = newNode(node.prefix.slice(j + 1));
      tail.values = node.values;
      tail.children = node.children;
      node.values = [];
      node.children = new Map([[node.prefix.charCodeAt(j), tail]]);
      node.prefix = node.prefix.slice(0, j);
    }
    i += j;
    if (i === key.length) {
      addValue(node, v);
      return;
    }
    const ch = key.charCodeAt(i);
    let child = node.children.get(ch);
    if (!child) {
      child = newNode(key.slice(i + 1));
      node.children.set(ch, child);
      addValue(child, v);
      return;
    }
    node = child;
    i++;
  }
}

class Out {
  private chunks: Uint8Array[] = [];
  size = 0;
  push(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.length;
  }
  u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    this.push(b);
  }
  str(s: string): void {
    this.push(Buffer.from(s + '\0', 'latin1'));
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Children first, then the node: the offset returned carries the node's flags. */
function writeNode(node: TrieNode, out: Out): number {
  const keys = [...node.children.keys()].sort((a, b) => a - b);
  const childOffsets = new Map<number, number>();
  for (const k of keys) childOffsets.set(k, writeNode(node.children.get(k)!, out));
  let offset = out.size;
  if (offset > INDEX_NODE_MASK) throw new ImageError('E_UNSUPPORTED', 'module index larger than 256 MiB', { structure: 'kmod index' });
  if (node.prefix !== '') {
    out.str(node.prefix);
    offset |= INDEX_NODE_PREFIX;
  }
  if (keys.length > 0) {
    const first = keys[0]!;
    const last = keys[keys.length - 1]!;
    out.push(Uint8Array.of(first, last));
    for (let c = first; c <= last; c++) out.u32(childOffsets.get(c) ?? 0);
    offset |= INDEX_NODE_CHILDS;
  }
  if (node.values.length > 0) {
    out.u32(node.values.length);
    for (const v of node.values) {
      out.u32(v.priority);
      out.str(v.value);
    }
    offset |= INDEX_NODE_VALUES;
  }
  return offset >>> 0;
}

function checkAscii(s: string, what: string): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c >= INDEX_CHILDMAX) throw new ImageError('E_UNSUPPORTED', `module index ${what} ${JSON.stringify(s.slice(0, 80))}: only 7-bit ASCII without NUL is allowed`, { structure: 'kmod index' });
  }
}

/** The binary index of `entries`, laid out as depmod writes it. */
export function writeKmodIndex(entries: readonly IndexEntry[]): Uint8Array {
  const root = newNode('');
  for (const e of entries) {
    checkAscii(e.key, 'key');
    checkAscii(e.value, 'value');
    insert(root, e.key, { value: e.value, priority: e.priority >>> 0 });
  }
  const out = new Out();
  out.u32(INDEX_MAGIC);
  out.u32(INDEX_VERSION);
  out.u32(0);
  const rootOffset = writeNode(root, out);
  const bytes = out.bytes();
  bytes.writeUInt32BE(rootOffset, 8);
  return bytes;
}

/**
 * Every key and its values in a binary index (for checks and tests). Offsets and counts
 * come from the file and are never trusted: each node must lie inside the file and before
 * its parent (depmod writes children first), so a hostile index cannot loop.
 */
export function readKmodIndex(buf: Uint8Array, where = 'kmod index'): IndexEntry[] {
  const fail = (msg: string, offset: number): never => {
    throw new ImageError('E_CORRUPT', `${where}: ${msg}`, { structure: 'kmod index', offset });
  };
  if (buf.length < 12) fail('shorter than its 12-byte header', 0);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(0) !== INDEX_MAGIC) fail('bad magic', 0);
  if (view.getUint32(4) >>> 16 !== INDEX_VERSION >>> 16) fail(`unsupported version 0x${view.getUint32(4).toString(16)}`, 4);
  const out: IndexEntry[] = [];
  const u32 = (at: number): number => (at + 4 <= buf.length ? view.getUint32(at) : fail('truncated', at));
  const str = (at: number): { s: string; next: number } => {
    const end = buf.indexOf(0, at);
    if (end < 0) fail('unterminated string', at);
    return { s: Buffer.from(buf.subarray(at, end)).toString('latin1'), next: end + 1 };
  };
  // Shared children could make a small file expand exponentially: count node visits.
  let visits = 0;
  const visit = (ref: number, key: string, limit: number): void => {
    if (++visits > buf.length || key.length > 4096) fail('more nodes or deeper keys than the file can hold', ref & INDEX_NODE_MASK);
    let at = ref & INDEX_NODE_MASK;
    if (at < 12 || at >= limit) fail(`node offset ${at} outside the file or not before its parent`, at);
    const nodeAt = at;
    if (ref & INDEX_NODE_PREFIX) {
      const p = str(at);
      key += p.s;
      at = p.next;
    }
    const children: [string, number][] = [];
    if (ref & INDEX_NODE_CHILDS) {
      if (at + 2 > buf.length) fail('truncated', at);
      const first = buf[at]!;
      const last = buf[at + 1]!;
      if (last < first) fail('child range ends before it starts', at);
      at += 2;
      for (let c = first; c <= last; c++, at += 4) {
        const child = u32(at);
        if (child !== 0) children.push([String.fromCharCode(c), child]);
      }
    }
    if (ref & INDEX_NODE_VALUES) {
      const count = u32(at);
      at += 4;
      if (count > buf.length) fail(`${count} values cannot fit`, at);
      for (let i = 0; i < count; i++) {
        const priority = u32(at);
        const v = str(at + 4);
        out.push({ key, value: v.s, priority });
        at = v.next;
      }
    }
    for (const [c, child] of children) visit(child, key + c, nodeAt);
  };
  visit(u32(8), '', buf.length);
  return out;
}
