export { STEPS, runSteps, rootFor, chosenKernel, targetKernelArgs, type Step, type StepContext, type RunStepsOptions } from './steps.js';
export { STEP_NAMES, CLEAN_OPERATIONS, DEFAULT_CLEAN, mergeChanges, type Change, type StepName, type CleanOperation, type RootBy, type TranslatePlan, type WritableGuestFs } from './types.js';
export { transformFstab, rootSpec, type FstabOptions, type TextEdit, type LineChange } from './fstab.js';
export { transformGrubLegacy, diffLines, type GrubConfOptions } from './grubconf.js';
export { transformInittab, transformSecuretty } from './consoles.js';
export { transformModprobe } from './modules.js';
export { transformIfcfg, commentMetadataFetches, transformSshdConfig, transformShadow } from './network.js';
export { sha512Crypt, randomSalt } from './crypt.js';
export { imageIdText, EUCA_RC_LOCAL, EUCA_UDEV_RULE, EUCA_UDEV_SCRIPT } from './eucalyptus.js';
