import { resolve, type GuestFs } from './fs.js';

export type Arch = 'x86_64' | 'i386' | 'aarch64' | 'arm' | 'unknown';

/** Architecture from an ELF header's e_machine. */
export function elfArch(head: Uint8Array): Arch {
  if (head.length < 20 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) return 'unknown';
  const little = head[5] === 1;
  const machine = little ? head[18]! | (head[19]! << 8) : (head[18]! << 8) | head[19]!;
  switch (machine) {
    case 0x3e: return 'x86_64';
    case 0x03: return 'i386';
    case 0xb7: return 'aarch64';
    case 0x28: return 'arm';
    default: return 'unknown';
  }
}

/** The guest's architecture from /sbin/init or /bin/sh (through symlinks, e.g. to systemd or busybox). */
export async function detectArch(fs: GuestFs): Promise<{ arch: Arch; source: string }> {
  for (const p of ['/sbin/init', '/bin/sh', '/bin/bash', '/usr/bin/bash', '/bin/busybox', '/bin/ls']) {
    const r = await resolve(fs, p).catch(() => undefined);
    if (!r || r.stat.type !== 'file' || r.stat.size < 64) continue;
    const arch = elfArch(await fs.read(r.path, 0, 64));
    if (arch !== 'unknown') return { arch, source: r.path };
  }
  return { arch: 'unknown', source: '' };
}
