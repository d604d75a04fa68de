/**
 * Bytes one command moved over the network: received from remote inputs, sent to remote
 * outputs. One meter is handed (in the remote options) to every device and upload the
 * command opens, so `--json` can report what crossed the wire and a TTY can show it live.
 */
export class TransferMeter {
  /** Response body bytes received (a resumed body counts only the bytes that arrived). */
  downloaded = 0;
  /** Bytes of the objects opened for reading: a bound, since holes and free blocks are never fetched. */
  downloadTotal = 0;
  /** Bytes of the output the server acknowledged (a part counts when its upload succeeded). */
  uploaded = 0;
  /** The size of the output being uploaded, when it is known before the upload (a spooled file); else 0. */
  uploadTotal = 0;

  constructor(private readonly onChange?: (meter: TransferMeter) => void) {}

  received(n: number): void {
    this.downloaded += n;
    if (n > 0) this.onChange?.(this);
  }

  sent(n: number): void {
    this.uploaded += n;
    if (n > 0) this.onChange?.(this);
  }

  opened(size: number): void {
    this.downloadTotal += size;
  }

  uploading(size: number): void {
    this.uploadTotal = size;
    this.onChange?.(this);
  }

  /** What --json reports. */
  summary(): { bytesDownloaded: number; bytesUploaded: number } {
    return { bytesDownloaded: this.downloaded, bytesUploaded: this.uploaded };
  }
}
