import { ImageError } from '@amitrans/block';
import { readText, resolve } from '../fs.js';
import { MAX_INITRD_READ, type KernelReport } from '../inspect.js';
import { moduleName, parseKconfig } from '../kconfig.js';
import { readInitrd } from '../initrd/reader.js';
import type { DepmodTexts } from '../initrd/depmod.js';
import { chooseSegmentCompression } from '../initrd/encoders.js';
import { appendSegment, injectionArchive, planInjection, InitrdInjectError } from '../initrd/inject.js';
import { writeNewcArchive } from '../initrd/cpiowriter.js';
import { rootDevice } from '../targets.js';
import { initrdAdditions } from '../verdict.js';
import type { Change, TranslatePlan, WritableGuestFs } from './types.js';
import type { GuestReport } from '../inspect.js';

/** depmod's output files are large on a full kernel (modules.alias ~1 MiB, modules.symbols ~0.5 MiB). */
const DEPMOD_TEXT_CAP = 32 * 1024 * 1024;

async function guestDepmod(fs: WritableGuestFs, k: KernelReport): Promise<DepmodTexts> {
  const dir = k.modulesDir;
  const read = async (name: string): Promise<string | undefined> => {
    if (dir === undefined) return undefined;
    const t = await readText(fs, `${dir}/${name}`, DEPMOD_TEXT_CAP);
    if (t?.truncated) throw new ImageError('E_UNSUPPORTED', `${dir}/${name} is larger than ${DEPMOD_TEXT_CAP} bytes`, { structure: `${dir}/${name}` });
    return t?.text;
  };
  const dep = await read('modules.dep');
  if (dep === undefined || dep.trim() === '') {
    throw new InitrdInjectError('E_UNSUPPORTED', `initrd ${k.initrd} of kernel ${k.version}: ${dir ?? `/lib/modules/${k.version}`}/modules.dep is missing, so module dependencies are not known (run depmod in the guest, or use --skip initrd)`, { structure: 'modules.dep' });
  }
  const out: DepmodTexts = { dep };
  for (const [key, name] of [['alias', 'modules.alias'], ['softdep', 'modules.softdep'], ['symbols', 'modules.symbols'], ['devname', 'modules.devname']] as const) {
    const t = await read(name);
    if (t !== undefined) out[key] = t;
  }
  return out;
}

async function readWhole(fs: WritableGuestFs, path: string, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  for (let at = 0; at < size; ) {
    const chunk = await fs.read(path, at, Math.min(4 << 20, size - at));
    if (chunk.length === 0) throw new ImageError('E_TRUNCATED', `${path} ended at byte ${at} of ${size}`, { structure: path, offset: at });
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * The initrd step: when the target's disk, filesystem or network driver is a module the
 * initrd lacks, add it (and what it needs) the way the initrd's own builder would have,
 * as one appended segment (see initrd/inject.ts). The original initrd stays byte for byte
 * at the front of the new one; the edit goes through the overlay like every other.
 */
export async function runInitrdStep(fs: WritableGuestFs, report: GuestReport, plan: TranslatePlan, k: KernelReport, dryRun: boolean): Promise<Change[]> {
  const want = [...initrdAdditions(k, plan.target, plan.bus, report.filesystem?.type), ...(plan.initrdAdd ?? [])];
  if (want.length === 0) return [];
  if (!k.initrd) {
    if ((plan.initrdAdd ?? []).length === 0) return [];
    throw new InitrdInjectError('E_UNSUPPORTED', `kernel ${k.version} has no initrd to add ${want.join(', ')} to`, { structure: 'initrd' });
  }
  const r = await resolve(fs, k.initrd);
  if (!r || r.stat.type !== 'file') throw new ImageError('E_CORRUPT', `initrd ${k.initrd} of kernel ${k.version} is not a readable file`, { structure: k.initrd });
  if (r.stat.size > MAX_INITRD_READ) throw new InitrdInjectError('E_UNSUPPORTED', `initrd ${k.initrd} is ${r.stat.size} bytes, more than the ${MAX_INITRD_READ} a boot loader loads`, { structure: k.initrd });
  const original = await readWhole(fs, r.path, r.stat.size);
  const contents = await readInitrd(original);
  const config = k.config ? await readText(fs, k.config) : undefined;
  const kconfig = config ? parseKconfig(config.text) : undefined;
  const builtinText = k.modulesDir ? await readText(fs, `${k.modulesDir}/modules.builtin`) : undefined;
  const builtin = new Set((builtinText?.text ?? '').split('\n').map((l) => moduleName(l.trim())).filter((n): n is string => n !== undefined));
  const root = rootDevice(plan.target, plan.bus, plan.diskBuild);
  const injection = planInjection({
    initrd: contents,
    initrdPath: k.initrd,
    kernel: k.version,
    want,
    guest: await guestDepmod(fs, k),
    builtin,
    ...(contents.flavour === 'nash' ? { rootDevice: root } : {}),
  });
  if (injection.modules.length === 0 && injection.files.length === 0) return [];
  const last = contents.segments[contents.segments.length - 1]?.compression ?? 'gzip';
  const compression = chooseSegmentCompression(last, kconfig);
  if (compression === undefined) {
    throw new InitrdInjectError('E_UNSUPPORTED', `initrd ${k.initrd} of kernel ${k.version}: ${k.config} enables neither CONFIG_RD_GZIP nor CONFIG_RD_ZSTD, the compressions a segment can be written in (use --skip initrd)`, { structure: k.initrd });
  }
  if (!dryRun) {
    const bytes = new Map<string, Uint8Array>();
    for (const m of injection.modules) {
      const path = `${k.modulesDir}/${m.source}`;
      const st = await fs.lstat(path);
      if (st?.type !== 'file') throw new ImageError('E_CORRUPT', `${path} (in modules.dep) is not a file`, { structure: path });
      bytes.set(m.source, await readWhole(fs, path, st.size));
    }
    const rewritten = appendSegment(original, injectionArchive(injection, bytes), compression);
    await fs.writeFile(r.path, rewritten, { mode: r.stat.mode & 0o7777, uid: r.stat.uid, gid: r.stat.gid });
  }
  const added = [...new Set(want.map((w) => moduleName(`${w}.ko`) ?? w))].filter((w) => !injection.present.includes(w));
  return [{
    step: 'initrd',
    file: r.path === k.initrd ? k.initrd : `${k.initrd} (-> ${r.path})`,
    action: 'edit',
    after: [...injection.summary, `appended as a ${compression} segment; the original ${original.length} bytes are kept in front`],
    why: `${contents.flavour} initrd of ${k.version}: ${added.join(', ')} must load before the root filesystem is mounted on the ${plan.target} ${plan.bus} bus`,
  }];
}

/**
 * The initrd's own udev renames the NIC (eth0 -> ens3) before the root is mounted when the
 * kernel line lacks net.ifnames=0, as in the Eucalyptus node controller's direct boot
 * (`root=... console=ttyS0` only). The same mask as in the root filesystem, appended as a
 * segment, keeps the kernel's names there too.
 */
export async function maskNamingInInitrd(fs: WritableGuestFs, k: KernelReport, maskPath: string, dryRun: boolean): Promise<Change[]> {
  if (!k.initrd || (k.initrdFlavour !== 'initramfs-tools' && k.initrdFlavour !== 'dracut')) return [];
  const r = await resolve(fs, k.initrd);
  if (!r || r.stat.type !== 'file' || r.stat.size > MAX_INITRD_READ) return [];
  const original = await readWhole(fs, r.path, r.stat.size);
  const contents = await readInitrd(original);
  if (contents.entries.some((e) => `/${e.path.replace(/^\/+/, '')}` === maskPath)) return [];
  const config = k.config ? await readText(fs, k.config) : undefined;
  const compression = chooseSegmentCompression(contents.segments[contents.segments.length - 1]?.compression ?? 'gzip', config ? parseKconfig(config.text) : undefined);
  if (compression === undefined) return [];
  if (!dryRun) {
    const dirs = maskPath.split('/').slice(1, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    const archive = writeNewcArchive([
      ...dirs.map((path) => ({ path, type: 'directory' as const, mode: 0o755 })),
      { path: maskPath.slice(1), type: 'symlink', linkTarget: '/dev/null', mode: 0o777 },
    ]);
    await fs.writeFile(r.path, appendSegment(original, archive, compression), { mode: r.stat.mode & 0o7777, uid: r.stat.uid, gid: r.stat.gid });
  }
  return [{
    step: 'network',
    file: r.path === k.initrd ? k.initrd : `${k.initrd} (-> ${r.path})`,
    action: 'edit',
    after: [`${maskPath} -> /dev/null, appended as a ${compression} segment`],
    why: 'the node controller boots the kernel without net.ifnames=0, so the initrd\'s udev would rename eth0 before the root is mounted',
  }];
}
