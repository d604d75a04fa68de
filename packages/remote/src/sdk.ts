/** The AWS SDK's S3 client module. */
export type S3Sdk = typeof import('@aws-sdk/client-s3');

let loading: Promise<S3Sdk> | undefined;

/**
 * The AWS SDK, loaded on first S3 use. It takes about a fifth of a second to load (twice
 * a local command's whole start-up), and every command imports this package to tell a URL
 * from a path: so no module of ours imports the SDK at top level, and a command that never
 * reaches S3 never loads it.
 */
export function loadS3Sdk(): Promise<S3Sdk> {
  loading ??= import('@aws-sdk/client-s3');
  return loading;
}
