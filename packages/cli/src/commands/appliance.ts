/** The appliance flags of convert and translate (-O ova, see options.ts); each is also an -o key. */
export interface ApplianceArgs {
  name?: string | undefined;
  cpus?: number | undefined;
  memory?: number | undefined;
  nic?: string | undefined;
  controller?: string | undefined;
  ovfVersion?: string | undefined;
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
