/** The Debian cloud kernel's module tree with depmod's own output, made once and cached under .tmp. */
import { cp, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { debRoot, requireTools, run } from '@amitrans/testkit';

const REPO = new URL('../../../', import.meta.url).pathname;

export interface ModuleTree {
  /** A root with lib/modules/<kver> and depmod's files in it. */
  root: string;
  kver: string;
  dir: string;
}

export async function debianModuleTree(ctx: { skip: (note?: string) => void }): Promise<ModuleTree> {
  requireTools(ctx, 'depmod');
  const kroot = debRoot(ctx, 'linux-image-cloud-amd64');
  const kver = (await readdir(join(kroot, 'lib/modules')))[0]!;
  const root = join(REPO, '.tmp/initrd-dep');
  const dir = join(root, 'lib/modules', kver);
  const done = await stat(join(dir, 'modules.dep.bin')).then(() => true, () => false);
  if (!done) {
    const part = `${root}.part-${process.pid}`;
    await rm(part, { recursive: true, force: true });
    await mkdir(join(part, 'lib/modules'), { recursive: true });
    await cp(join(kroot, 'lib/modules', kver), join(part, 'lib/modules', kver), { recursive: true });
    await run('depmod', ['-b', part, kver]);
    await rm(root, { recursive: true, force: true });
    await rename(part, root).catch(async () => rm(part, { recursive: true, force: true }));
  }
  return { root, kver, dir };
}


export { buildFixtureInitrd as builtInitrd } from '@amitrans/testkit';
