export { inspectGuest, findGrubStages, BOOT_CONFIG_FILES, MAX_INITRD_READ, type GuestReport, type KernelReport, type InspectContext, type InitrdSummary, type GrubStages } from './inspect.js';
export { verdicts, verdictFor, compareVersions, type Verdict } from './verdict.js';
export {
  TARGETS, TARGET_BUSES, TARGET_FACTS, DISK_TARGETS, BUS_DRIVERS, DEVICE_PREFIX, targetFacts, devicePrefix, rootDevice, kernelConsoles, acceptedConsoles,
  consolesToReplace, targetModules, xenConsole, type Target, type Bus, type TargetFacts, type VerifyBoot, type BootHintInput,
} from './targets.js';
export { parseGrubLegacy, parseGrub2, defaultEntry, type BootConfig, type BootEntry } from './bootconfig.js';
export { parseFstab, parseDiskDevice, type FstabEntry } from './fstab.js';
export { detectDistro, parseKeyValues, familyOf, type Distro, type Family } from './distro.js';
export { detectArch, elfArch, type Arch } from './elf.js';
export { parseKconfig, moduleName, DRIVERS, DRIVER_NAMES, type DriverName } from './kconfig.js';
export { scanKernels, pickInitrd, type KernelInfo, type KernelScan, type DriverStatus } from './kernels.js';
export { detectConsoles, type ConsoleEntry } from './consoles.js';
export { detectModprobeAliases, MODPROBE_FILES, type ModprobeAlias } from './modprobe.js';
export { detectNetwork, type NetworkConfig, type IfcfgFile } from './network.js';
export { detectCloudHooks, detectSelinux, detectImageId, RC_LOCAL_FILES, type CloudHooks, type SelinuxConfig } from './cloud.js';
export { resolve, readText, exists, list, normalize, dirnameOf, type GuestFs, type GuestStat, type GuestFileType } from './fs.js';
export { extGuestFs } from './extguest.js';
export * from './translate/index.js';
export * from './initrd/index.js';
export { sevenZipPath } from './sevenzip.js';
export { chooseBootloader, findGrub2, grub2Version, GRUB2_DIRS, NO_BOOTLOADER, type BootloaderChoice, type BootloaderKind, type BootloaderOptions, type Grub2Report } from './bootloader.js';
