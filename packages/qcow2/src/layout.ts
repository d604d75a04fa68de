import type { ClusterRun } from '@amitrans/block';

/**
 * Where every structure of a new image goes. The metadata comes first, in QEMU's order
 * (header, refcount table, refcount blocks, L1, L2 tables), then the data clusters.
 * Sizes come from the plan (an upper bound on the data clusters), so the header and tables
 * can be written before the data, or the space reserved and patched afterwards.
 */
export interface Layout {
  clusterBits: number;
  clusterSize: number;
  /** Virtual size in bytes (a whole number of sectors). */
  size: number;
  l1Size: number;
  l1Offset: number;
  l1Clusters: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  refcountBlockOffset: number;
  refcountBlocks: number;
  /** L1 indexes that get an L2 table, ascending; the i-th table lives at l2Offset + i clusters. */
  l2Indexes: number[];
  l2Offset: number;
  /** First byte of the data area. */
  dataOffset: number;
  /** Upper bound of data clusters the sizes were computed for. */
  dataClusters: number;
  /** Refcount entries per refcount block (16-bit refcounts). */
  refsPerBlock: number;
}

export const REFCOUNT_ORDER = 4;

export function planLayout(size: number, clusterBits: number, runs: readonly ClusterRun[], dataClusters: number): Layout {
  const clusterSize = 2 ** clusterBits;
  const l2Entries = clusterSize / 8;
  const l1Size = Math.ceil(size / (clusterSize * l2Entries));
  const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / clusterSize));
  const l2Indexes: number[] = [];
  for (const r of runs) {
    const a = Math.floor(r.first / l2Entries);
    const b = Math.floor((r.first + r.count - 1) / l2Entries);
    for (let i = Math.max(a, (l2Indexes[l2Indexes.length - 1] ?? -1) + 1); i <= b; i++) l2Indexes.push(i);
  }
  const refsPerBlock = (clusterSize * 8) / 2 ** REFCOUNT_ORDER;
  // Refcount blocks must count every cluster, themselves and the table included: iterate
  // until the sizes stop growing (they only grow, so this ends within a few rounds).
  const fixed = 1 + l1Clusters + l2Indexes.length + dataClusters;
  let blocks = 1;
  let tableClusters = 1;
  while (true) {
    const total = fixed + blocks + tableClusters;
    const b = Math.max(1, Math.ceil(total / refsPerBlock));
    const t = Math.max(1, Math.ceil((b * 8) / clusterSize));
    if (b === blocks && t === tableClusters) break;
    blocks = Math.max(blocks, b);
    tableClusters = Math.max(tableClusters, t);
  }
  const refcountTableOffset = clusterSize;
  const refcountBlockOffset = refcountTableOffset + tableClusters * clusterSize;
  const l1Offset = refcountBlockOffset + blocks * clusterSize;
  const l2Offset = l1Offset + l1Clusters * clusterSize;
  const dataOffset = l2Offset + l2Indexes.length * clusterSize;
  return {
    clusterBits,
    clusterSize,
    size,
    l1Size,
    l1Offset,
    l1Clusters,
    refcountTableOffset,
    refcountTableClusters: tableClusters,
    refcountBlockOffset,
    refcountBlocks: blocks,
    l2Indexes,
    l2Offset,
    dataOffset,
    dataClusters,
    refsPerBlock,
  };
}

/** The refcount table: one entry per refcount block, all blocks laid out contiguously. */
export function serializeRefcountTable(layout: Layout): Uint8Array {
  const buf = new Uint8Array(layout.refcountTableClusters * layout.clusterSize);
  const dv = new DataView(buf.buffer);
  for (let i = 0; i < layout.refcountBlocks; i++) {
    dv.setBigUint64(i * 8, BigInt(layout.refcountBlockOffset + i * layout.clusterSize));
  }
  return buf;
}

/**
 * Refcount block `i`, asking `refcount(cluster)` for each host cluster it covers.
 */
export function serializeRefcountBlock(layout: Layout, i: number, refcount: (cluster: number) => number): Uint8Array {
  const buf = new Uint8Array(layout.clusterSize);
  const dv = new DataView(buf.buffer);
  const first = i * layout.refsPerBlock;
  for (let k = 0; k < layout.refsPerBlock; k++) {
    const r = refcount(first + k);
    if (r !== 0) dv.setUint16(k * 2, r);
  }
  return buf;
}

/** The refcount of a metadata cluster: 1 for everything up to the data area, except unused L2 slots. */
export function metadataRefcount(layout: Layout, cluster: number, l2Used: (slot: number) => boolean): number {
  const cs = layout.clusterSize;
  const at = cluster * cs;
  if (at < layout.l2Offset) return 1;
  if (at < layout.dataOffset) return l2Used((at - layout.l2Offset) / cs) ? 1 : 0;
  return 0;
}
