import { driverByName, translate, type TranslateOptions, type TranslateResult } from '@amitrans/diskimg';
import { TARGET_FACTS, type Bus, type CleanOperation, type RootBy, type StepName, type Target } from '@amitrans/guest';
import type { RemoteOptions } from '@amitrans/remote';
import { humanSize } from '../human.js';
import { line, type CliIo } from '../io.js';
import { translateBundleOptions, type TranslateBundleArgs } from './bundle.js';
import { Progress } from '../progress.js';
import { applianceOptions, type ApplianceArgs } from './appliance.js';
import { parseOptions } from './convert.js';

export interface TranslateArgs {
  input: string;
  output: string;
  target: Target;
  format?: string | undefined;
  options: string[];
  bus?: Bus | undefined;
  rootBy?: RootBy | undefined;
  only: string[];
  skip: string[];
  dryRun: boolean;
  size?: number | undefined;
  align?: 'modern' | 'legacy' | undefined;
  grubDir?: string | undefined;
  bootloader?: 'grub-legacy' | 'grub2' | undefined;
  rootPassword?: string | undefined;
  sshPasswordAuth?: 'yes' | 'no' | undefined;
  selinux?: 'relabel' | 'permissive' | undefined;
  clean?: string[] | undefined;
  noClean: boolean;
  imageId: string[];
  partition?: number | undefined;
  bundle?: TranslateBundleArgs;
  initrdAdd?: string[] | undefined;
  allowXenHvmOnly?: boolean;
  appliance?: ApplianceArgs;
  json: boolean;
  sha256: boolean;
  progress: boolean;
  remote?: RemoteOptions;
}

export async function translateCommand(a: TranslateArgs, io: CliIo, signal: AbortSignal): Promise<void> {
  const progress = new Progress(io, a.progress || (io.stderr.isTTY === true && !a.json));
  const opts: TranslateOptions = {
    target: a.target,
    formatOptions: { ...parseOptions(a.options), ...applianceOptions(a.appliance ?? {}) },
    dryRun: a.dryRun,
    signal,
    remote: { ...a.remote, meter: progress.meter() },
    sha256: a.sha256,
    progress: (stage, done, total) => progress.update(stage, done, total),
    ...(a.format ? { format: a.format } : {}),
    ...(a.bus ? { bus: a.bus } : a.target === 'virtualbox' && a.appliance?.controller ? { bus: a.appliance.controller as Bus } : {}),
    ...(a.rootBy ? { rootBy: a.rootBy } : {}),
    ...(a.only.length ? { only: a.only as StepName[] } : {}),
    ...(a.skip.length ? { skip: a.skip as StepName[] } : {}),
    ...(a.size !== undefined ? { size: a.size } : {}),
    ...(a.align ? { align: a.align } : {}),
    ...(a.grubDir ? { grubDir: a.grubDir } : {}),
    ...(a.bootloader ? { bootloader: a.bootloader } : {}),
    ...(a.rootPassword ? { rootPassword: a.rootPassword } : {}),
    ...(a.sshPasswordAuth ? { sshPasswordAuth: a.sshPasswordAuth } : {}),
    ...(a.selinux ? { selinux: a.selinux } : {}),
    ...(a.noClean ? { clean: [] } : a.clean ? { clean: a.clean as CleanOperation[] } : {}),
    ...(a.imageId.length ? { eucalyptus: parseOptions(a.imageId) } : {}),
    ...(a.partition !== undefined ? { partition: a.partition } : {}),
    ...(a.allowXenHvmOnly ? { allowXenHvmOnly: true } : {}),
    ...(a.initrdAdd?.length ? { initrdAdd: a.initrdAdd.flatMap((m) => m.split(',')).map((m) => m.trim()).filter(Boolean) } : {}),
  };
  if (a.format === 'bundle' || /\.manifest\.xml$/i.test(a.output)) opts.bundle = await translateBundleOptions(a.bundle ?? {});
  let result: TranslateResult;
  try {
    result = await translate(a.input, a.output, opts);
  } finally {
    progress.finish();
  }
  const out = a.output === '-' ? io.stderr : io.stdout;
  if (a.json) {
    line(out, JSON.stringify(result, null, 2));
    return;
  }
  for (const l of renderTranslation(result)) line(out, l);
}

export function renderTranslation(r: TranslateResult): string[] {
  const g = r.report;
  const out: string[] = [];
  out.push(`${r.input}: ${g.distro.name}${g.distro.version ? ` ${g.distro.version}` : ''} (${g.arch}), kernel ${r.verdict.kernel}, ${r.verdict.bus} disk on ${r.target}${r.verdict.platforms ? ` (runs on ${r.verdict.platforms.join(', ')})` : ''}`);
  for (const reason of r.verdict.reasons) out.push(`note: ${reason}`);
  out.push('', `Changes (${r.changes.length}):`);
  let step = '';
  for (const c of r.changes) {
    if (c.step !== step) {
      step = c.step;
      out.push(`  ${step}`);
    }
    out.push(`    ${c.action} ${c.file}: ${c.why}`);
    for (const b of c.before ?? []) out.push(`      - ${b}`);
    for (const x of c.after ?? []) out.push(`      + ${x}`);
  }
  if (r.rootPassword) out.push('', `root password (shown once): ${r.rootPassword}`);
  if (r.seconds > 0 && r.virtualSize > 0) {
    out.push('', `${r.output}: ${r.format}, ${r.layout === 'disk' ? 'bootable MBR disk' : r.layout === 'partitioned' ? 'partitioned disk' : 'bare filesystem'}, ${humanSize(r.virtualSize)} virtual, ${humanSize(r.bytesWritten)} of data stored, ${r.seconds.toFixed(1)} s`);
    if (r.sha256) out.push(`sha256: ${r.sha256}`);
    for (const n of r.notes) out.push(`note: ${n}`);
    out.push('', ...bootHint(r));
  } else out.push('', 'dry run: nothing written');
  return out;
}

function bootHint(r: TranslateResult): string[] {
  const driver = driverByName(r.format);
  const fmt = driver?.qemuFormat ?? r.format;
  if (driver?.describesGuest) {
    return ['Import the appliance:', `  VBoxManage import ${r.output}    (or File > Import Appliance; VMware: ovftool / Deploy OVF Template)`,
      'or test its disk with QEMU:', `  amitrans convert ${r.output} disk.raw && qemu-system-x86_64 -m 1024 -nographic -drive file=disk.raw,format=raw,if=ide`];
  }
  if (r.target === 'eucalyptus' && r.bundle) {
    return [`EKI ${r.bundle.eki.manifest}, ERI ${r.bundle.eri.manifest}, EMI ${r.bundle.emi.manifest}${r.bundle.emi.signed ? '' : ' (UNSIGNED)'}`,
      'Register them in this order (an admin registers the EKI and ERI):', ...r.bundle.register.map((c) => `  ${c}`)];
  }
  return TARGET_FACTS[r.target].bootHint({ output: r.output, qemuFormat: fmt, bus: r.verdict.bus, ...(r.commands ? { commands: r.commands } : {}) });
}
