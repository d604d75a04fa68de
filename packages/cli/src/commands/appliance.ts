import type { Argv } from 'yargs';

/** The appliance flags of convert and translate (-O ova); each is also an -o key. */
export interface ApplianceArgs {
  name?: string | undefined;
  cpus?: number | undefined;
  memory?: number | undefined;
  nic?: string | undefined;
  controller?: string | undefined;
  ovfVersion?: string | undefined;
}

export function applianceFlags<T>(y: Argv<T>) {
  return y
    .option('name', { type: 'string', group: 'OVA output:', describe: 'virtual machine name (default: the output file name)' })
    .option('cpus', { type: 'number', group: 'OVA output:', describe: 'virtual CPUs (default 1)' })
    .option('memory', { type: 'number', group: 'OVA output:', describe: 'memory in MiB (default 1024)' })
    .option('nic', { choices: ['e1000', 'pcnet32', 'vmxnet3', 'virtio'] as const, group: 'OVA output:', describe: 'network adapter (default e1000)' })
    .option('controller', { choices: ['sata', 'ide'] as const, group: 'OVA output:', describe: 'disk controller (default: ide; translate: from the verdict)' })
    .option('ovf-version', { type: 'string', choices: ['1.0', '2.0'] as const, group: 'OVA output:', describe: 'OVF 1.0 with a SHA-1 manifest (default) or 2.0 with SHA-256' });
}

/** The flags as -o options; given flags override -o keys of the same meaning. */
export function applianceOptions(a: ApplianceArgs): Record<string, string> {
  const out: Record<string, string> = {};
  if (a.name !== undefined) out.name = a.name;
  if (a.cpus !== undefined) out.cpus = String(a.cpus);
  if (a.memory !== undefined) out.memory = String(a.memory);
  if (a.nic !== undefined) out.nic = a.nic;
  if (a.controller !== undefined) out.controller = a.controller;
  if (a.ovfVersion !== undefined) out.ovf_version = a.ovfVersion;
  return out;
}
