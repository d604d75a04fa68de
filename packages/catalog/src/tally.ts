import { IMAGE_CLASSES, type Classified, type ImageClass } from './classify.js';

export interface CatalogFilters {
  aki?: readonly string[];
  class?: readonly ImageClass[];
  arch?: readonly string[];
  rootType?: readonly string[];
  /** An owner id or alias (amazon, self, 979382823631). */
  owner?: readonly string[];
}

export interface AkiCount {
  aki: string;
  version: string;
  disk: string;
  arch: string;
  region: string;
  count: number;
}

/** The counts of a listing, or of a part of one (a worker's range), as plain data. */
export interface TallyData {
  total: number;
  matched: number;
  pvgrub: number;
  byClass: Record<ImageClass, number>;
  byAki: AkiCount[];
}

/** Counts images by class and by pv-grub AKI; parts counted apart add up with merge(). */
export class Tally {
  total = 0;
  matched = 0;
  pvgrub = 0;
  readonly byClass = Object.fromEntries(IMAGE_CLASSES.map((c) => [c, 0])) as Record<ImageClass, number>;
  private readonly byAki = new Map<string, AkiCount>();
  private readonly pass: (c: Classified) => boolean;

  constructor(filters: CatalogFilters = {}) {
    this.pass = matcher(filters);
  }

  /** Count one image; false when the filters leave it out. */
  add(c: Classified): boolean {
    this.total++;
    if (!this.pass(c)) return false;
    this.matched++;
    this.byClass[c.class]++;
    if (c.pvgrub) {
      this.pvgrub++;
      const p = c.pvgrub;
      const row = this.byAki.get(p.id) ?? { aki: p.id, version: p.version, disk: p.disk, arch: p.arch, region: p.region, count: 0 };
      row.count++;
      this.byAki.set(row.aki, row);
    }
    return true;
  }

  merge(d: TallyData): void {
    this.total += d.total;
    this.matched += d.matched;
    this.pvgrub += d.pvgrub;
    for (const c of IMAGE_CLASSES) this.byClass[c] += d.byClass[c];
    for (const r of d.byAki) {
      const row = this.byAki.get(r.aki);
      if (row) row.count += r.count;
      else this.byAki.set(r.aki, { ...r });
    }
  }

  data(): TallyData {
    const byAki = [...this.byAki.values()].sort((a, b) => (a.aki < b.aki ? -1 : a.aki > b.aki ? 1 : 0));
    return { total: this.total, matched: this.matched, pvgrub: this.pvgrub, byClass: { ...this.byClass }, byAki };
  }
}

function matcher(f: CatalogFilters): (c: Classified) => boolean {
  const has = (list: readonly string[] | undefined, ...values: (string | undefined)[]): boolean =>
    !list?.length || values.some((v) => v !== undefined && list.includes(v));
  return (c) =>
    has(f.aki, c.image.kernelId) && has(f.class, c.class) && has(f.arch, c.image.arch) &&
    has(f.rootType, c.image.rootDeviceType) && has(f.owner, c.image.owner, c.image.ownerAlias);
}
