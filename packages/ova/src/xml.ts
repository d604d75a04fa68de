import { ImageError } from '@amitrans/block';

/**
 * A small, strict XML reader for OVF descriptors: elements, attributes, text, comments,
 * CDATA, processing instructions and the five predefined entities plus character
 * references. A DOCTYPE is refused (an OVF has none, and refusing it rules out entity
 * expansion tricks). Names keep their prefix; `local` drops it, so lookups can ignore
 * which prefix a producer bound to which namespace.
 */
export interface XmlElement {
  /** Qualified name as written: "ovf:Envelope", "rasd:InstanceID", "Item". */
  readonly name: string;
  /** Name without its prefix. */
  readonly local: string;
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: XmlElement[];
  /** Character data directly inside this element (concatenated, untrimmed). */
  text: string;
  /** Character offset of the start tag in the document. */
  readonly at: number;
}

const MAX_DEPTH = 256;
const STRUCT = 'OVF descriptor';

function localName(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(colon + 1);
}

const NAME = /[A-Za-z_:\u00c0-\uffff][-A-Za-z0-9_:.\u00b7\u00c0-\uffff]*/y;

function decodeEntities(text: string, at: number): string {
  if (!text.includes('&')) return text;
  let out = '';
  let p = 0;
  for (;;) {
    const amp = text.indexOf('&', p);
    if (amp < 0) return out + text.slice(p);
    out += text.slice(p, amp);
    const semi = text.indexOf(';', amp);
    const ref = semi < 0 || semi - amp > 17 ? undefined : text.slice(amp + 1, semi);
    const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
    let value = ref === undefined ? undefined : named[ref];
    const num = ref === undefined ? null : (/^#x([0-9a-fA-F]{1,6})$/.exec(ref) ?? /^#([0-9]{1,7})$/.exec(ref));
    if (value === undefined && num) {
      const code = parseInt(num[1]!, ref!.startsWith('#x') ? 16 : 10);
      if (code > 0 && code <= 0x10ffff) value = String.fromCodePoint(code);
    }
    if (value === undefined) {
      throw new ImageError('E_CORRUPT', `malformed XML: bad entity reference ${JSON.stringify(text.slice(amp, amp + 12))}`, { structure: STRUCT, offset: at + amp });
    }
    out += value;
    p = semi + 1;
  }
}

type Fail = (detail: string, at?: number) => never;

function skipSpace(text: string, q: number): number {
  while (q < text.length && /\s/.test(text[q]!)) q++;
  return q;
}

/** The attributes of a start tag, read from just after its name; `end` is where its `>` or `/>` is. */
function readAttributes(text: string, from: number, fail: Fail): { attributes: Map<string, string>; end: number } {
  const attributes = new Map<string, string>();
  let q = from;
  for (;;) {
    const ws = q;
    q = skipSpace(text, q);
    if (text.startsWith('/>', q) || text[q] === '>') return { attributes, end: q };
    if (q === ws) fail('attributes must be separated by white space', q);
    NAME.lastIndex = q;
    const a = NAME.exec(text);
    if (!a) fail('bad attribute name', q);
    const key = a![0];
    q = skipSpace(text, q + key.length);
    if (text[q] !== '=') fail(`attribute ${key} has no value`, q);
    q = skipSpace(text, q + 1);
    const quote = text[q];
    if (quote !== '"' && quote !== "'") fail(`attribute ${key} value is not quoted`, q);
    const end = text.indexOf(quote!, q + 1);
    if (end < 0) fail('unterminated attribute value', q);
    const raw = text.slice(q + 1, end);
    if (raw.includes('<')) fail(`'<' in the value of attribute ${key}`, q);
    if (attributes.has(key)) fail(`attribute ${key} given twice`, q);
    attributes.set(key, decodeEntities(raw, q).replace(/[\t\n\r]/g, ' '));
    q = end + 1;
  }
}

/** Parse a whole document and return its root element. */
export function parseXml(text: string): XmlElement {
  let p = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const fail: Fail = (detail: string, at = p): never => {
    throw new ImageError('E_CORRUPT', `malformed XML: ${detail}`, { structure: STRUCT, offset: at });
  };
  if (text.charCodeAt(0) === 0xfeff) p = 1;
  while (p < text.length) {
    const lt = text.indexOf('<', p);
    const chunk = text.slice(p, lt < 0 ? text.length : lt);
    if (chunk.length > 0) {
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(chunk, p);
      else if (chunk.trim() !== '') fail('text outside the root element');
    }
    if (lt < 0) break;
    p = lt;
    if (text.startsWith('<!--', p)) {
      const end = text.indexOf('-->', p + 4);
      if (end < 0) fail('unterminated comment');
      p = end + 3;
    } else if (text.startsWith('<![CDATA[', p)) {
      const end = text.indexOf(']]>', p + 9);
      if (end < 0) fail('unterminated CDATA section');
      const top = stack[stack.length - 1];
      if (!top) fail('CDATA outside the root element');
      top!.text += text.slice(p + 9, end);
      p = end + 3;
    } else if (text.startsWith('<?', p)) {
      const end = text.indexOf('?>', p + 2);
      if (end < 0) fail('unterminated processing instruction');
      p = end + 2;
    } else if (text.startsWith('<!', p)) {
      fail('DOCTYPE and other declarations are not allowed in an OVF descriptor');
    } else if (text.startsWith('</', p)) {
      NAME.lastIndex = p + 2;
      const m = NAME.exec(text);
      if (!m) fail('bad end tag');
      const name = m![0];
      const q = skipSpace(text, p + 2 + name.length);
      if (text[q] !== '>') fail('bad end tag');
      const open = stack.pop();
      if (!open || open.name !== name) fail(`end tag </${name}> does not match <${open?.name ?? ''}>`);
      p = q + 1;
    } else {
      NAME.lastIndex = p + 1;
      const m = NAME.exec(text);
      if (!m) fail('bad start tag');
      const name = m![0];
      const start = p;
      const { attributes, end: q } = readAttributes(text, p + 1 + name.length, fail);
      const el: XmlElement = { name, local: localName(name), attributes, children: [], text: '', at: start };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) fail('more than one root element');
      else root = el;
      if (text[q] === '/') {
        p = q + 2;
      } else {
        if (stack.length >= MAX_DEPTH) fail(`elements nested deeper than ${MAX_DEPTH}`);
        stack.push(el);
        p = q + 1;
      }
    }
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1]!.name}> is never closed`, text.length);
  if (!root) fail('no root element', 0);
  return root!;
}

/** The value of an attribute by local name, whatever prefix (or none) it carries. */
export function attr(el: XmlElement, local: string): string | undefined {
  const direct = el.attributes.get(local);
  if (direct !== undefined) return direct;
  for (const [k, v] of el.attributes) if (localName(k) === local && !k.startsWith('xmlns')) return v;
  return undefined;
}

export function children(el: XmlElement, local: string): XmlElement[] {
  return el.children.filter((c) => c.local === local);
}

export function child(el: XmlElement, local: string): XmlElement | undefined {
  return el.children.find((c) => c.local === local);
}

/** Trimmed text of the first child with this local name. */
export function childText(el: XmlElement, local: string): string | undefined {
  const c = child(el, local);
  return c === undefined ? undefined : c.text.trim();
}

/** Escape text for element content or a double-quoted attribute value. */
export function escapeXml(value: string): string {
  return value.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
