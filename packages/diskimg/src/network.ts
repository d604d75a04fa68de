import { isRemote, TransferMeter, type RemoteOptions } from '@amitrans/remote';

/** What a command with remote inputs or outputs moved over the network (results' `network`). */
export interface NetworkSummary {
  /** Response body bytes received from s3:// and http(s):// inputs. */
  bytesDownloaded: number;
  /** Bytes uploaded to an s3:// output (parts the server acknowledged). */
  bytesUploaded: number;
}

/**
 * The remote options with a meter on them (the caller's, so a CLI can draw progress from
 * it, or a new one), and the summary a result reports: only when one of `names` is remote,
 * so local results keep their shape.
 */
export function metered(remote: RemoteOptions | undefined, ...names: unknown[]): { remote: RemoteOptions; summary(): { network?: NetworkSummary } } {
  const meter = remote?.meter ?? new TransferMeter();
  const any = names.some((n) => typeof n === 'string' && isRemote(n));
  return {
    remote: { ...remote, meter },
    summary: () => (any ? { network: meter.summary() } : {}),
  };
}
