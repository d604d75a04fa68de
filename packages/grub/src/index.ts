export { grubBootSectors, installGrub, patchStage2, type GrubBootSectors, type GrubInstallOptions } from './install.js';
export { checkStages, checkFilesystemSupport, embedSectors, COMPAT_MAJOR, COMPAT_MINOR, type StageFiles } from './stages.js';
