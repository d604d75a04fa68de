import type { ClassifiedImage, ImageClass, PvGrubInfo } from './classify.js';

export interface AkiRow {
  aki: string;
  version: string;
  disk: string;
  arch: string;
  from: PvGrubInfo['from'];
  images: number;
}

export interface CatalogSummary {
  /** Every image read, before the filters. */
  imagesRead: number;
  /** The images the filters kept (all of them without filters). */
  selected: number;
  /** Per pv-grub AKI among the selected, oldest release first. */
  akis: AkiRow[];
  totalPvGrub: number;
  byClass: Record<ImageClass, number>;
  linesSkipped: number;
}

/** Counts as the images stream by; holds one row per pv-grub AKI seen, nothing per image. */
export class Tally {
  private imagesRead = 0;
  private selected = 0;
  private readonly akis = new Map<string, AkiRow>();
  private readonly byClass: Record<ImageClass, number> = { 'pvgrub-hd0': 0, 'pvgrub-hd00': 0, 'aki-kernel': 0, hvm: 0, 'no-kernel-info': 0 };

  read(): void {
    this.imagesRead++;
  }

  add(image: ClassifiedImage): void {
    this.selected++;
    this.byClass[image.class]++;
    const p = image.pvgrub;
    if (!p) return;
    let row = this.akis.get(p.aki);
    if (!row) this.akis.set(p.aki, (row = { aki: p.aki, version: p.version, disk: p.disk, arch: p.arch, from: p.from, images: 0 }));
    row.images++;
  }

  summary(linesSkipped: number): CatalogSummary {
    const akis = [...this.akis.values()].sort((a, b) => a.version.localeCompare(b.version) || a.disk.localeCompare(b.disk) || a.arch.localeCompare(b.arch) || a.aki.localeCompare(b.aki));
    return {
      imagesRead: this.imagesRead,
      selected: this.selected,
      akis,
      totalPvGrub: akis.reduce((n, r) => n + r.images, 0),
      byClass: { ...this.byClass },
      linesSkipped,
    };
  }
}

/** The notes' table: one line per pv-grub AKI, then the totals. */
export function renderSummary(s: CatalogSummary): string[] {
  const rows = [['AKI', 'pv-grub', 'disk', 'arch', 'AMIs'], ...s.akis.map((r) => [r.aki + (r.from === 'kernels' ? ' *' : ''), r.version, r.disk, r.arch, String(r.images)])];
  const out = layout(rows, 4);
  if (s.akis.some((r) => r.from === 'kernels')) out.push('* classified from its name in --kernels');
  out.push('');
  const filtered = s.selected !== s.imagesRead ? ` (${s.selected} of them selected by the filters)` : '';
  out.push(`Total pv-grub AMIs: ${s.totalPvGrub} of ${s.selected}`);
  out.push(`Total images: ${s.imagesRead}${filtered}`);
  out.push(`By class: ${Object.entries(s.byClass).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push(`Lines skipped: ${s.linesSkipped}`);
  return out;
}

/** Columns two spaces apart; the numeric last column right-aligned. */
function layout(rows: string[][], numeric: number): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === numeric ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd());
}
