export { runCli, EXIT_FAILURE, EXIT_USAGE } from './cli.js';
export type { CliIo } from './io.js';
export { humanSize } from './human.js';
