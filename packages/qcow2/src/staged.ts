import {
  CountingSink,
  clusterWindows,
  dataRanges,
  engineCopy,
  isZeroAt,
  mergeRanges,
  mostlyInFiles,
  type BlockDevice,
  type Sink,
  type StagedWrite,
  type WriteOptions,
} from '@amitrans/block';
import { metadataRefcount, planLayout, serializeRefcountBlock, serializeRefcountTable } from './layout.js';
import { COPIED, OFFSET_MASK, standardEntry } from './tables.js';
import { qcow2Header, writeSettings } from './writer.js';

/**
 * An uncompressed qcow2 written in two stages (see StagedWrite). A CopyEngine worker appends
 * the base's clusters that are not all zeros at once; `finish` rewrites the changed clusters
 * (in place when stored, appended when new and not all zeros), then writes the tables.
 *
 * The layout is planned for any cluster of the disk: an L2 table slot for every L1 entry and
 * refcount blocks for every cluster, so a change can land anywhere. The slots of tables never
 * used, and refcount blocks that stay all zeros, are not written (holes in the file).
 * Undefined for compressed output, a sink that is not a file, or a base not mostly in files.
 */
export async function stageQcow2(base: BlockDevice, sink: Sink, options: WriteOptions = {}): Promise<StagedWrite | undefined> {
  const settings = writeSettings(options.options);
  const file = sink.seekable && sink.position === 0 && !settings.compress ? sink.file : undefined;
  if (!file) return undefined;
  const ranges = await dataRanges(base, options.signal);
  if (!(await mostlyInFiles(base, ranges))) return undefined;
  const size = Math.ceil(base.size / 512) * 512;
  const cs = 2 ** settings.clusterBits;
  const l2Entries = cs / 8;
  const clusters = Math.ceil(size / cs);
  const layout = planLayout(size, settings.clusterBits, clusters > 0 ? [{ first: 0, count: clusters }] : [], clusters);
  const out = new CountingSink(sink);
  await out.skip(layout.dataOffset);

  // L2 tables by L1 index, and a refcount per host cluster of the data area.
  const tables = new Map<number, DataView>();
  const dataFirst = layout.dataOffset / cs;
  const refs = new Uint16Array(clusters);
  const hostOf = (index: number): number => {
    const t = tables.get(Math.floor(index / l2Entries));
    return t ? Number(t.getBigUint64((index % l2Entries) * 8) & OFFSET_MASK) : 0;
  };
  const map = (index: number, at: number): void => {
    const idx = Math.floor(index / l2Entries);
    let t = tables.get(idx);
    if (!t) tables.set(idx, (t = new DataView(new ArrayBuffer(cs))));
    t.setBigUint64((index % l2Entries) * 8, standardEntry(at));
    refs[at / cs - dataFirst]!++;
  };

  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const copying = engineCopy(base, ranges, {
    fd: file.fd,
    path: file.path,
    mode: 'append',
    unit: cs,
    // Every batch is handed over at once: the worker must not wait while this thread inspects.
    depth: 1 << 20,
    appendAt: layout.dataOffset,
    signal,
    onResult: (result, batch) => {
      const s = result.stored;
      for (let k = 0; k < s.length; k += 3) {
        for (let c = 0; c < s[k + 1]!; c++) map(s[k]! + c, s[k + 2]! + c * cs);
      }
      options.progress?.(Math.min(base.size, batch.offset + batch.length), base.size);
    },
  });
  copying.catch(() => undefined);

  return {
    async finish(disk, changed) {
      if (disk.size !== base.size) throw new RangeError(`staged qcow2: the final disk has ${disk.size} bytes, the base ${base.size}`);
      const copied = await copying;
      out.written += copied.bytesWritten;
      let bytesRead = copied.bytesRead;
      let position = copied.position;
      // Whole clusters are rewritten: clusterWindows reads only the ranges it is given.
      const whole = mergeRanges(changed.map((r) => {
        const from = Math.floor(r.offset / cs) * cs;
        return { offset: from, length: Math.min(disk.size, Math.ceil((r.offset + r.length) / cs) * cs) - from };
      }));
      for await (const w of clusterWindows(disk, whole, cs, { signal: options.signal, onRead: (n) => (bytesRead += n) })) {
        for (let i = 0; i < w.count; i++) {
          const index = w.first + i;
          const data = w.data.subarray(i * cs, (i + 1) * cs);
          const stored = hostOf(index);
          // A stored cluster is rewritten in place, zeros too (nothing stale may stay behind).
          if (stored !== 0) await out.pwrite(data, stored);
          else if (!isZeroAt(w.data, i * cs, (i + 1) * cs)) {
            await out.pwrite(data, position);
            map(index, position);
            position += cs;
          }
        }
      }
      await out.skip(position - out.position);

      // The tables: L2 tables in their slots (an L2 slot per L1 index), L1, refcounts, header.
      const l1 = new DataView(new ArrayBuffer(layout.l1Clusters * cs));
      const used = new Set<number>();
      for (const [idx, t] of [...tables].sort((a, b) => a[0] - b[0])) {
        // Every L1 index has its slot: the slot number is the index.
        const slot = idx;
        const at = layout.l2Offset + slot * cs;
        await out.pwrite(new Uint8Array(t.buffer), at);
        l1.setBigUint64(idx * 8, BigInt(at) | COPIED);
        used.add(slot);
      }
      await out.pwrite(new Uint8Array(l1.buffer), layout.l1Offset);
      await out.pwrite(serializeRefcountTable(layout), layout.refcountTableOffset);
      const dataClusters = (position - layout.dataOffset) / cs;
      const refcount = (c: number): number => {
        if (c < dataFirst) return metadataRefcount(layout, c, (slot) => used.has(slot));
        return c - dataFirst < dataClusters ? refs[c - dataFirst]! : 0;
      };
      for (let i = 0; i < layout.refcountBlocks; i++) {
        const block = serializeRefcountBlock(layout, i, refcount);
        // A block of zeros stays a hole: it reads the same.
        if (i === 0 || !isZeroAt(block, 0, block.length)) await out.pwrite(block, layout.refcountBlockOffset + i * cs);
      }
      await out.pwrite(qcow2Header(layout, settings.version), 0);
      options.progress?.(disk.size, disk.size);
      return { bytesRead, bytesWritten: out.written };
    },
    async abort() {
      stop.abort();
      await copying.catch(() => undefined);
    },
  };
}
