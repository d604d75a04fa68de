import { list, readTextOrWarn, type GuestFs } from './fs.js';

export interface ModprobeAlias {
  alias: string;
  module: string;
  file: string;
  line: number;
}

export const MODPROBE_FILES = ['/etc/conf.modules', '/etc/modules.conf', '/etc/modprobe.conf', '/etc/modprobe.conf.local'];

/** `alias X Y` lines in every file modprobe reads (virt-v2v's list). */
export async function detectModprobeAliases(fs: GuestFs, warnings: string[] = []): Promise<ModprobeAlias[]> {
  const files = [...MODPROBE_FILES, ...(await list(fs, '/etc/modprobe.d')).map((n) => `/etc/modprobe.d/${n}`)];
  const out: ModprobeAlias[] = [];
  for (const file of files) {
    const t = await readTextOrWarn(fs, file, warnings);
    t?.text.split('\n').forEach((raw, line) => {
      const m = /^\s*alias\s+(\S+)\s+(\S+)/.exec(raw);
      if (m) out.push({ alias: m[1]!, module: m[2]!, file, line });
    });
  }
  return out;
}
