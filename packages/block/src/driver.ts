import type { BlockDevice } from './device.js';
import type { OptionTable } from './options.js';
import type { Sink } from './sink.js';

/** What a prober sees: the first and last bytes of a file (up to 64 KiB each) and its size. */
export interface ProbeInput {
  readonly head: Uint8Array;
  readonly tail: Uint8Array;
  readonly size: number;
}

export interface ProbeResult {
  /** The driver name: 'vhd', 'vdi', 'vmdk', 'qcow2', ... */
  readonly format: string;
  /** 'fixed' | 'dynamic' | 'monolithicSparse' | 'streamOptimized' | 'compat 1.1' ... */
  readonly subformat?: string;
  /** Virtual size when the header alone tells it. */
  readonly virtualSize?: number;
  /** For an archive: the name of its first member. */
  readonly firstEntry?: string;
}

export interface OpenContext {
  /** The container's file name, for error messages. */
  readonly file?: string;
  /** Open a file named by the container (a VMDK flat extent), relative to it. */
  openRelated?(name: string): Promise<BlockDevice>;
}

/** What every long job over a disk takes: where it reports progress, and what stops it. */
export interface ProgressOptions {
  /** Progress in bytes processed of `total`. */
  readonly progress?: ((done: number, total: number) => void) | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface WriteOptions extends ProgressOptions {
  /** Format options in qemu-img's -o style: subformat=fixed, compress=on, adapter_type=lsilogic. */
  readonly options?: Readonly<Record<string, string>>;
}

export interface WriteResult {
  /** Virtual disk bytes actually read from the source (holes are never read). */
  readonly bytesRead: number;
  /** Bytes written to the sink (holes not counted). */
  readonly bytesWritten: number;
  /** The virtual size of what was written, when the format rounded it (VHD CHS rounding). */
  readonly virtualSize?: number;
  /** Things the user should know about the output (a rounded size, a changed option). */
  readonly notes?: readonly string[];
}

/**
 * One container format. Every format package exports one of these, and @amitrans/diskimg
 * keeps one table of them: a new format touches one place.
 */
export interface FormatDriver {
  readonly name: string;
  readonly description: string;
  /** Other names -O takes for it (qemu-img's `vpc` for vhd). */
  readonly aliases?: readonly string[];
  /** The name QEMU gives it (-drive format=, qemu-img -f) when QEMU reads it itself: `vpc` for vhd; absent for an archive. */
  readonly qemuFormat?: string;
  /** File name extensions that name it when -O is not given (x.qcow2). */
  readonly extensions?: readonly string[];
  /** True when a compressed copy (.gz, .bz2, .xz) of it is a known deliverable. */
  readonly compressible?: boolean;
  /** The platform whose own format this is ('virtualbox' for VDI and OVA): verify boots it there unless told otherwise. */
  readonly platform?: string;
  /** True for an appliance that describes its guest: translate fills its options from the inspection. */
  readonly describesGuest?: boolean;
  /** Recognise the container from its head and tail; undefined when it is not this format. Never throws. */
  probe(input: ProbeInput): ProbeResult | undefined;
  /** Turn the container's bytes into the virtual disk. The driver does not close `container`. */
  open?(container: BlockDevice, context?: OpenContext): Promise<BlockDevice>;
  /** Write `disk` as this container. */
  write?(disk: BlockDevice, sink: Sink, options?: WriteOptions): Promise<WriteResult>;
  /** True when `write` works on a non-seekable sink (stdout) for the given options. */
  canStream?(options?: Readonly<Record<string, string>>): boolean;
  /** The -o keys `write` understands: help, parser and default of each (read by the resolver and by `write`). */
  readonly writeOptions?: OptionTable;
  /** What the table cannot say alone (keys that contradict each other), as `write` checks it: called before any work. */
  checkOptions?(options: Readonly<Record<string, string>>): void;
}
