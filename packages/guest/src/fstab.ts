export interface FstabEntry {
  /** Device as written: /dev/sda1, LABEL=root, UUID=..., none. */
  spec: string;
  kind: 'device' | 'label' | 'uuid' | 'other';
  mountpoint: string;
  type: string;
  options: string[];
  freq: number;
  passno: number;
  /** 0-based line number. */
  line: number;
}

export function parseFstab(text: string): FstabEntry[] {
  const out: FstabEntry[] = [];
  text.split('\n').forEach((raw, line) => {
    const t = raw.trim();
    if (!t || t.startsWith('#')) return;
    const f = t.split(/\s+/);
    if (f.length < 2) return;
    const spec = f[0]!;
    const kind = spec.startsWith('LABEL=') ? 'label' : spec.startsWith('UUID=') ? 'uuid' : spec.startsWith('/dev/') ? 'device' : 'other';
    out.push({
      spec,
      kind,
      mountpoint: f[1]!,
      type: f[2] ?? 'auto',
      options: (f[3] ?? 'defaults').split(','),
      freq: Number(f[4] ?? 0) || 0,
      passno: Number(f[5] ?? 0) || 0,
      line,
    });
  });
  return out;
}

/** /dev/xvda1 -> { prefix: 'xvd', disk: 'a', partition: 1 }; also sda, vda, hda, xvda (no partition). */
export function parseDiskDevice(spec: string): { prefix: string; disk: string; partition?: number } | undefined {
  const m = /^\/dev\/(xvd|sd|vd|hd)([a-z]+)(\d*)$/.exec(spec);
  if (!m) return undefined;
  return m[3] ? { prefix: m[1]!, disk: m[2]!, partition: Number(m[3]) } : { prefix: m[1]!, disk: m[2]! };
}
