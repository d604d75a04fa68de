/** Names of the GPT partition type GUIDs a Linux cloud image meets. */
const GPT_NAMES = new Map<string, string>([
  ['0FC63DAF-8483-4772-8E79-3D69D8477DE4', 'Linux filesystem'],
  ['0657FD6D-A4AB-43C4-84E5-0933C84B4F4F', 'Linux swap'],
  ['E6D6D379-F507-44C2-A23C-238F2A3DF928', 'Linux LVM'],
  ['A19D880F-05FC-4D3B-A006-743F0F84911E', 'Linux RAID'],
  ['4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709', 'Linux root (x86-64)'],
  ['44479540-F297-41B2-9AF7-D131D5F0458A', 'Linux root (x86)'],
  ['B921B045-1DF0-41C3-AF44-4C6F280D3FAE', 'Linux root (ARM-64)'],
  ['BC13C2FF-59E6-4262-A352-B275FD6F7172', 'Linux extended boot'],
  ['C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'EFI System'],
  ['21686148-6449-6E6F-744E-656564454649', 'BIOS boot'],
  ['EBD0A0A2-B9E5-4433-87C0-68B6B72699C7', 'Microsoft basic data'],
  ['E3C9E316-0B5C-4DB8-817D-F92DF00215AE', 'Microsoft reserved'],
]);

export function gptTypeName(guid: string): string {
  return GPT_NAMES.get(guid.toUpperCase()) ?? 'Unknown';
}
