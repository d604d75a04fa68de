import { ImageError } from '@amitrans/block';

/** An element of a small XML document, with where it sits in the source text. */
export interface XmlElement {
  readonly name: string;
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: XmlElement[];
  /** Character data directly inside (entities decoded), concatenated. */
  text: string;
  /** [start, end) of the element's markup in the source, from `<` to the last `>`. */
  readonly start: number;
  end: number;
}

const MAX_DEPTH = 32;
const NAME = /[A-Za-z_][A-Za-z0-9_.:-]*/y;
const ATTRIBUTE = /\s+([A-Za-z_][A-Za-z0-9_.:-]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/y;

/**
 * A strict reader for the XML that manifests use: elements, attributes, character data,
 * the five predefined entities and character references, comments, processing
 * instructions and CDATA. No DTD (so no entity expansion). Errors give the offset.
 */
export function parseXml(text: string, structure: string): XmlElement {
  const fail = (detail: string, offset: number): never => {
    throw new ImageError('E_CORRUPT', detail, { structure, offset });
  };
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let i = 0;
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = text.slice(i, lt < 0 ? text.length : lt);
    if (chunk.length > 0) {
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(chunk, i, fail);
      else if (chunk.trim() !== '') fail('text outside the root element', i);
    }
    if (lt < 0) break;
    i = lt;
    if (text.startsWith('<?', i)) i = skipPast(text, i, '?>', 'processing instruction', fail);
    else if (text.startsWith('<!--', i)) i = skipPast(text, i, '-->', 'comment', fail);
    else if (text.startsWith('<![CDATA[', i)) {
      const end = skipPast(text, i, ']]>', 'CDATA section', fail);
      const top = stack[stack.length - 1] ?? fail('CDATA outside the root element', i);
      top.text += text.slice(i + 9, end - 3);
      i = end;
    } else if (text.startsWith('<!', i)) fail('a DTD or declaration is not allowed in a manifest', i);
    else if (text.startsWith('</', i)) {
      NAME.lastIndex = i + 2;
      const m = NAME.exec(text) ?? fail('bad closing tag', i);
      const close = /\s*>/y;
      close.lastIndex = NAME.lastIndex;
      if (!close.exec(text)) fail(`bad closing tag </${m[0]}`, i);
      const top = stack.pop() ?? fail(`closing tag </${m[0]}> without an opening tag`, i);
      if (top.name !== m[0]) fail(`</${m[0]}> closes <${top.name}>`, i);
      top.end = close.lastIndex;
      i = close.lastIndex;
    } else {
      const el = openTag(text, i, fail);
      i = el.end;
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) fail('a second root element', el.start);
      else root = el;
      if (!text.startsWith('/>', i - 2)) {
        if (stack.length >= MAX_DEPTH) fail(`elements nested deeper than ${MAX_DEPTH}`, el.start);
        stack.push(el);
      }
    }
  }
  if (stack.length > 0) fail(`the document ends inside <${stack[stack.length - 1]!.name}>`, text.length);
  return root ?? fail('no root element', 0);
}

function openTag(text: string, at: number, fail: (d: string, o: number) => never): XmlElement {
  NAME.lastIndex = at + 1;
  const m = NAME.exec(text) ?? fail('bad tag', at);
  const attributes = new Map<string, string>();
  let j = NAME.lastIndex;
  for (;;) {
    ATTRIBUTE.lastIndex = j;
    const a = ATTRIBUTE.exec(text);
    if (!a) break;
    if (attributes.has(a[1]!)) fail(`attribute ${a[1]} repeated`, j);
    attributes.set(a[1]!, decodeEntities(a[2] ?? a[3]!, j, fail));
    j = ATTRIBUTE.lastIndex;
  }
  const close = /\s*(\/?)>/y;
  close.lastIndex = j;
  if (!close.exec(text)) fail(`bad tag <${m[0]}`, at);
  return { name: m[0], attributes, children: [], text: '', start: at, end: close.lastIndex };
}

function skipPast(text: string, at: number, marker: string, what: string, fail: (d: string, o: number) => never): number {
  const end = text.indexOf(marker, at);
  if (end < 0) fail(`unterminated ${what}`, at);
  return end + marker.length;
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(s: string, at: number, fail: (d: string, o: number) => never): string {
  if (!s.includes('&')) return s;
  return s.replace(/&([^;]{0,10});?/g, (whole, ref: string) => {
    if (!whole.endsWith(';')) fail(`bare '&' in text`, at);
    if (NAMED[ref] !== undefined) return NAMED[ref];
    const num = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(ref);
    const code = num ? (num[1] !== undefined ? parseInt(num[1], 16) : Number(num[2])) : -1;
    if (code < 1 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) fail(`unknown entity &${ref};`, at);
    return String.fromCodePoint(code);
  });
}

/** Text for an element: what lxml escapes, with non-ASCII as decimal references (encoding ASCII). */
export function escapeText(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '\r') out += '&#13;';
    else if (c > 0x7e) out += `&#${c};`;
    else out += ch;
  }
  return out;
}
