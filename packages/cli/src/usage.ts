/** A command line yargs rejected; the message is yargs' own. Exit code 2. */
export class UsageError extends Error {}
