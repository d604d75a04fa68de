import { ImageError } from '@amitrans/block';

/** moddep.lst is a few KiB; anything far larger is not one. */
export const MAX_MODDEP = 1 << 20;
const NAME = /^[A-Za-z0-9_.+-]{1,64}$/;

/** GRUB 2's moddep.lst: `name: dep dep ...`, one module a line (util/grub-mkimage's input). */
export function parseModdep(text: string): Map<string, string[]> {
  if (text.length > MAX_MODDEP) throw new ImageError('E_TOO_LARGE', `moddep.lst is ${text.length} bytes; a real one is a few KiB`, { structure: 'moddep.lst' });
  const deps = new Map<string, string[]>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon).trim();
    const list = colon < 0 ? [] : line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    if (!NAME.test(name) || list.some((d) => !NAME.test(d))) {
      throw new ImageError('E_CORRUPT', `moddep.lst line ${i + 1} is not 'module: dep ...': ${JSON.stringify(line.slice(0, 80))}`, { structure: 'moddep.lst' });
    }
    deps.set(name, list);
  }
  return deps;
}

/**
 * The modules grub-mkimage puts in core.img for `requested`, in its order (util/resolve.c):
 * each requested module depth first, its dependencies in reverse order of their line, then
 * itself; a module already placed is skipped.
 */
export function resolveModules(requested: readonly string[], deps: ReadonlyMap<string, readonly string[]>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, from: string | undefined): void => {
    if (seen.has(name)) return;
    const own = deps.get(name);
    if (!own) {
      throw new ImageError('E_UNSUPPORTED', from ? `module ${from} needs ${name}, which moddep.lst does not list` : `GRUB module ${name} is not in moddep.lst`, { structure: 'moddep.lst' });
    }
    seen.add(name); // marked before its deps: a cycle in a damaged list ends here
    for (let i = own.length - 1; i >= 0; i--) visit(own[i]!, name);
    out.push(name);
  };
  for (const name of requested) visit(name, undefined);
  return out;
}
