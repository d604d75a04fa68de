import { ImageError } from '@amitrans/block';
import { readText, resolve, type GuestStat } from '../fs.js';
import { MAX_INITRD_READ, type KernelReport } from '../inspect.js';
import { moduleName, parseKconfig } from '../kconfig.js';
import { readInitrd } from '../initrd/reader.js';
import type { DepmodTexts } from '../initrd/depmod.js';
import { chooseSegmentCompression } from '../initrd/encoders.js';
import { appendSegment, injectionMembers, planInjection, InitrdInjectError } from '../initrd/inject.js';
import { writeNewcArchive, type NewcMember } from '../initrd/cpiowriter.js';
import { chooseRewriteCompression, rewriteInitrd, type RewriteCompression } from '../initrd/rewrite.js';
import type { InitrdSource } from '../initrd/source.js';
import type { InitrdContents } from '../initrd/contents.js';
import type { SegmentCompression } from '../initrd/encoders.js';
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

/** A guest file as an initrd source: read in chunks, never whole. */
function guestSource(fs: WritableGuestFs, path: string, size: number): InitrdSource {
  return { size, read: (position, length) => fs.read(path, position, length) };
}

/** How the new members go in: the main archive rewritten (lsinitramfs lists them), or a segment appended. */
type Placement = { how: 'rewrite'; compression: RewriteCompression } | { how: 'append'; compression: SegmentCompression };

function placement(contents: InitrdContents, kconfig: ReadonlyMap<string, string> | undefined): Placement | undefined {
  const last = contents.segments[contents.segments.length - 1];
  const rewrite = last && (last.archive === 'newc' || last.archive === 'crc') ? chooseRewriteCompression(last.compression, kconfig) : undefined;
  if (rewrite !== undefined) return { how: 'rewrite', compression: rewrite };
  const append = chooseSegmentCompression(last?.compression ?? 'gzip', kconfig);
  return append === undefined ? undefined : { how: 'append', compression: append };
}

function describePlacement(p: Placement, contents: InitrdContents): string {
  const last = contents.segments[contents.segments.length - 1]!;
  if (p.how === 'append') return `appended as a ${p.compression} segment; the original ${contents.size} bytes are kept in front`;
  const from = last.compression === p.compression ? p.compression : `${last.compression}, now ${p.compression}`;
  return `the main archive rewritten with them (${from}; the files they replace left out)${last.offset > 0 ? `; the ${last.offset} bytes before it (early cpio) kept as they were` : ''}`;
}

/** Write the initrd at `r` with `members` added, as `p` says; the file keeps its mode and owner. */
async function writeInitrd(fs: WritableGuestFs, r: { path: string; stat: GuestStat }, contents: InitrdContents, members: NewcMember[], p: Placement): Promise<void> {
  const source = guestSource(fs, r.path, r.stat.size);
  const bytes = p.how === 'rewrite'
    ? (await rewriteInitrd(source, contents, members, { compression: p.compression, maxOutput: MAX_INITRD_READ })).bytes
    : appendSegment(await readWhole(fs, r.path, r.stat.size), writeNewcArchive(members), p.compression);
  await fs.writeFile(r.path, bytes, { mode: r.stat.mode & 0o7777, uid: r.stat.uid, gid: r.stat.gid });
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
 * inside its main archive (initrd/rewrite.ts: the early cpio in front kept byte for byte,
 * the members it replaces left out), or, when the kernel cannot unpack gzip, in an
 * appended segment (initrd/inject.ts). The edit goes through the overlay like every other.
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
  const contents = await readInitrd(guestSource(fs, r.path, r.stat.size));
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
  const how = placement(contents, kconfig);
  if (how === undefined) {
    throw new InitrdInjectError('E_UNSUPPORTED', `initrd ${k.initrd} of kernel ${k.version}: ${k.config} enables neither CONFIG_RD_GZIP nor CONFIG_RD_ZSTD, the compressions an initrd can be written in (use --skip initrd)`, { structure: k.initrd });
  }
  if (!dryRun) {
    const bytes = new Map<string, Uint8Array>();
    for (const m of injection.modules) {
      const path = `${k.modulesDir}/${m.source}`;
      const st = await fs.lstat(path);
      if (st?.type !== 'file') throw new ImageError('E_CORRUPT', `${path} (in modules.dep) is not a file`, { structure: path });
      bytes.set(m.source, await readWhole(fs, path, st.size));
    }
    await writeInitrd(fs, r, contents, injectionMembers(injection, bytes), how);
  }
  const added = [...new Set(want.map((w) => moduleName(`${w}.ko`) ?? w))].filter((w) => !injection.present.includes(w));
  return [{
    step: 'initrd',
    file: r.path === k.initrd ? k.initrd : `${k.initrd} (-> ${r.path})`,
    action: 'edit',
    after: [...injection.summary, describePlacement(how, contents)],
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
  const contents = await readInitrd(guestSource(fs, r.path, r.stat.size));
  if (contents.entries.some((e) => `/${e.path.replace(/^\/+/, '')}` === maskPath)) return [];
  const config = k.config ? await readText(fs, k.config) : undefined;
  const how = placement(contents, config ? parseKconfig(config.text) : undefined);
  if (how === undefined) return [];
  if (!dryRun) {
    // Parent directories come from writeNewcArchive, only where the archive has none.
    await writeInitrd(fs, r, contents, [{ path: maskPath.slice(1), type: 'symlink', linkTarget: '/dev/null', mode: 0o777 }], how);
  }
  return [{
    step: 'network',
    file: r.path === k.initrd ? k.initrd : `${k.initrd} (-> ${r.path})`,
    action: 'edit',
    after: [`${maskPath} -> /dev/null; ${describePlacement(how, contents)}`],
    why: 'the node controller boots the kernel without net.ifnames=0, so the initrd\'s udev would rename eth0 before the root is mounted',
  }];
}
