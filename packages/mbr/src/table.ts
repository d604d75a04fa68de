import type { Chs } from './chs.js';

export const SECTOR_SIZE = 512;

/** What every partition has, whatever the scheme. Sizes in bytes are sectors x 512. */
export interface Partition {
  /** 1-4 primaries (by slot), 5+ logicals in EBR-chain order; GPT: entry slot + 1. As Linux names the nodes. */
  readonly index: number;
  readonly kind: 'primary' | 'extended' | 'logical';
  readonly startSector: number;
  readonly sectors: number;
  readonly start: number;
  readonly size: number;
  readonly bootable: boolean;
}

export interface MbrPartition extends Partition {
  /** The MBR type byte. */
  readonly type: number;
  /** The CHS fields as stored; nothing in amitrans trusts them over the LBA fields. */
  readonly chsStart: Chs;
  readonly chsEnd: Chs;
}

export interface GptPartition extends Partition {
  readonly kind: 'primary';
  /** The partition type GUID, upper case (0FC63DAF-8483-4772-8E79-3D69D8477DE4 for Linux data). */
  readonly type: string;
  readonly guid: string;
  readonly name: string;
  /** The 64 attribute bits as 16 hex digits ("8000000000000004"): a string so tables stay JSON-serialisable. */
  readonly attributes: string;
}

export interface MbrTable {
  readonly scheme: 'mbr';
  readonly sectorSize: 512;
  readonly diskSignature: number;
  /** Primaries and the extended partition by slot, then logicals in chain order. */
  readonly partitions: MbrPartition[];
  readonly warnings: string[];
}

export interface GptTable {
  readonly scheme: 'gpt';
  readonly sectorSize: 512;
  /** The disk signature of the protective MBR (usually 0). */
  readonly diskSignature: number;
  readonly diskGuid: string;
  readonly firstUsableLba: number;
  readonly lastUsableLba: number;
  readonly partitions: GptPartition[];
  /** E.g. that the backup header was used because the primary one is damaged. */
  readonly warnings: string[];
}

/** Not a partition table: the caller treats the disk as unpartitioned. */
export interface NoTable {
  readonly scheme: 'none';
  readonly sectorSize: 512;
  readonly partitions: [];
  /** Why sector 0 is not a partition table. */
  readonly reason: string;
  readonly warnings: string[];
}

export type PartitionTable = MbrTable | GptTable | NoTable;
