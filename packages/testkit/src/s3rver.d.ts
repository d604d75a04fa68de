// s3rver 3.7.1 ships no types; startS3 describes the little of it that is used.
declare module 's3rver';
