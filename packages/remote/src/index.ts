export { isRemote, parseRemote, displayName, redact, type RemoteLocation } from './url.js';
export { TransientError, isTransient, withRetry, backoff, describeError, type RetryOptions } from './retry.js';
export { fetchRange, readBody, type RangeSource, type ObjectHead, type FetchOptions } from './source.js';
export { HttpSource, type HttpSourceOptions } from './http.js';
export { S3Source, s3Client, s3Error, type S3Options } from './s3.js';
export { loadS3Sdk, type S3Sdk } from './sdk.js';
export { RemoteDevice, type RemoteDeviceOptions } from './device.js';
export { S3Sink, firstPartSize, partSizeFor, MAX_PARTS, MIN_PART, MAX_PART, type S3SinkOptions } from './upload.js';
export { openRemote, s3Sink, SpooledS3Sink, type RemoteOptions } from './open.js';
