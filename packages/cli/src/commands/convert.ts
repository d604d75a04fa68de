import { convert } from '@amitrans/diskimg';
import type { RemoteOptions } from '@amitrans/remote';
import { humanSize } from '../human.js';
import { line, type CliIo } from '../io.js';
import { Progress } from '../progress.js';
import { ImageError } from '@amitrans/block';
import { applianceOptions, type ApplianceArgs } from './appliance.js';

export interface ConvertArgs {
  input: string;
  output: string;
  format?: string | undefined;
  options: string[];
  appliance?: ApplianceArgs;
  json: boolean;
  sha256: boolean;
  sync?: boolean;
  progress: boolean;
  remote?: RemoteOptions;
}

/** Parse qemu-img style `-o key=value,key2=value2` (repeatable). */
export function parseOptions(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    for (const pair of item.split(',')) {
      if (!pair) continue;
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new ImageError('E_USAGE', `option '${pair}' is not key=value`);
      out[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return out;
}

export async function convertCommand(args: ConvertArgs, io: CliIo, signal: AbortSignal): Promise<void> {
  const progress = new Progress(io, args.progress || (io.stderr.isTTY === true && !args.json));
  try {
    const result = await convert(args.input, args.output, {
      ...(args.format !== undefined ? { format: args.format } : {}),
      options: { ...parseOptions(args.options), ...applianceOptions(args.appliance ?? {}) },
      sha256: args.sha256,
      sync: args.sync ?? false,
      signal,
      remote: { ...args.remote, meter: progress.meter() },
      progress: (stage, done, total) => progress.update(stage, done, total),
    });
    progress.finish();
    if (args.json) {
      line(args.output === '-' ? io.stderr : io.stdout, JSON.stringify(result, null, 2));
    } else if (args.output !== '-') {
      line(io.stdout, `${result.output}: ${result.format}${result.compression ? ` (${result.compression})` : ''}, ${humanSize(result.virtualSize)} virtual, ` +
        `${humanSize(result.bytesWritten)} of data stored, read ${humanSize(result.bytesRead)} in ${result.seconds.toFixed(1)} s`);
      if (result.sha256) line(io.stdout, `sha256: ${result.sha256}`);
      for (const n of result.notes) line(io.stderr, `note: ${n}`);
    } else if (result.sha256) {
      line(io.stderr, `sha256: ${result.sha256}`);
    }
  } finally {
    progress.finish();
  }
}
