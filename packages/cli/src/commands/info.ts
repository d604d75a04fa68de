import { imageInfo, type FilesystemInfo, type ImageInfo } from '@amitrans/diskimg';
import type { RemoteOptions } from '@amitrans/remote';
import { humanSize, sizeWithBytes, table } from '../human.js';
import { line, type CliIo } from '../io.js';

export async function infoCommand(file: string, json: boolean, io: CliIo, remote: RemoteOptions = {}): Promise<void> {
  const info = await imageInfo(file, { remote });
  if (json) {
    line(io.stdout, JSON.stringify(info, null, 2));
    return;
  }
  for (const l of renderInfo(info)) line(io.stdout, l);
}

export function renderInfo(info: ImageInfo): string[] {
  const fmt = info.subformat ? `${info.format} (${info.subformat})` : info.format;
  const head: string[][] = [
    ['file:', info.file],
    ['format:', info.compression ? `${fmt}, ${info.compression}-compressed` : fmt],
    ['virtual size:', sizeWithBytes(info.virtualSize)],
    ['file size:', sizeWithBytes(info.fileSize)],
  ];
  const out: string[] = [];
  if (info.filesystem) {
    head.push(['content:', 'bare filesystem (no partition table)']);
    out.push(...table(head), '', ...renderFs('filesystem', info.filesystem));
    return out;
  }
  if (info.partitionTable === 'none') {
    head.push(['content:', 'no partition table and no filesystem amitrans recognises']);
    return table(head);
  }
  const sig = info.diskSignature ? `, disk signature ${info.diskSignature}` : '';
  head.push(['partitions:', `${info.partitionTable.toUpperCase()}, ${info.partitions.length} partition${info.partitions.length === 1 ? '' : 's'}${sig}`]);
  out.push(...table(head));
  if (info.partitions.length > 0) {
    out.push('');
    const rows = [['#', 'boot', 'start', 'size', 'type', 'holds']];
    for (const p of info.partitions) {
      const fs = p.filesystem ? `${p.filesystem.type}${p.filesystem.label ? ` "${p.filesystem.label}"` : ''}` : p.filesystemError ? 'damaged ext superblock' : '';
      rows.push([
        String(p.index),
        p.bootable ? '*' : '',
        `sector ${p.startSector}`,
        humanSize(p.size),
        `${p.type.startsWith('0x') ? p.type : p.type.slice(0, 8) + '…'} ${p.typeName}`.trim(),
        p.kind === 'extended' ? '(extended)' : fs,
      ]);
    }
    out.push(...table(rows).map((r) => `  ${r}`));
  }
  for (const p of info.partitions) {
    if (p.filesystem) out.push('', ...renderFs(`partition ${p.index}`, p.filesystem));
    else if (p.filesystemError) out.push('', `partition ${p.index}: ${p.filesystemError}`);
  }
  return out;
}

function renderFs(title: string, fs: FilesystemInfo): string[] {
  return [
    `${title}: ${fs.type}${fs.label ? `, label "${fs.label}"` : ', no label'}, UUID ${fs.uuid}, state ${fs.state}`,
    ...table([
      ['  blocks:', `${fs.blocksTotal} x ${fs.blockSize} bytes (${humanSize(fs.blocksTotal * fs.blockSize)}), ${fs.blocksFree} free`],
      ['  inodes:', `${fs.inodesTotal} x ${fs.inodeSize} bytes, ${fs.inodesFree} free`],
      ['  features:', fs.features.join(' ')],
    ]),
  ];
}
