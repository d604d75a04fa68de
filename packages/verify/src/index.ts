export { ConsoleWatch, LOGIN_PROMPT, type ConsoleWatchOptions, type Failure, type FailureClass, type Milestone, type MilestoneName } from './console.js';
export { GRUB_LEGACY_ERRORS } from './grub-errors.js';
export { QEMU_BINARY, QEMU_PACKAGES, findQemu, pickAccel, qemuArgs, type Accel, type DiskBus, type Machine, type NicModel } from './qemu.js';
export { bootMachine, type BootOptions, type BootOutcome } from './run.js';
export { freePort, readSshBanner } from './ssh.js';
