import { exists, readText, readTextOrWarn, type GuestFs } from './fs.js';
import { parseKeyValues } from './distro.js';

export interface CloudHooks {
  /** rc.local lines that talk to the EC2 metadata service (169.254.169.254). */
  metadataFetches: { file: string; line: number; text: string }[];
  cloudInit: boolean;
  /** Per-instance state cloud-init keeps (must be cleaned for a new image). */
  cloudInitState: boolean;
}

export const RC_LOCAL_FILES = ['/etc/rc.local', '/etc/rc.d/rc.local'];

export async function detectCloudHooks(fs: GuestFs, warnings: string[] = []): Promise<CloudHooks> {
  const metadataFetches: CloudHooks['metadataFetches'] = [];
  const seen = new Set<string>();
  for (const file of RC_LOCAL_FILES) {
    const t = await readTextOrWarn(fs, file, warnings);
    if (!t || seen.has(t.path)) continue;
    seen.add(t.path);
    t.text.split('\n').forEach((text, line) => {
      if (/169\.254\.169\.254/.test(text) && !/^\s*#/.test(text)) metadataFetches.push({ file, line, text });
    });
  }
  const cloudInit = (await exists(fs, '/etc/cloud/cloud.cfg')) || (await exists(fs, '/usr/bin/cloud-init'));
  const cloudInitState = await exists(fs, '/var/lib/cloud/instance');
  return { metadataFetches, cloudInit, cloudInitState };
}

export interface SelinuxConfig {
  mode: 'enforcing' | 'permissive' | 'disabled' | 'absent';
  type?: string;
}

export async function detectSelinux(fs: GuestFs): Promise<SelinuxConfig> {
  const t = await readText(fs, '/etc/selinux/config', 64 * 1024);
  if (!t) return { mode: 'absent' };
  const kv = parseKeyValues(t.text);
  const mode = (kv.get('SELINUX') ?? 'disabled').toLowerCase();
  const out: SelinuxConfig = { mode: mode === 'enforcing' || mode === 'permissive' ? mode : 'disabled' };
  if (kv.get('SELINUXTYPE')) out.type = kv.get('SELINUXTYPE')!;
  return out;
}

/** /etc/image-id of Eucalyptus starter images. */
export async function detectImageId(fs: GuestFs): Promise<Record<string, string> | undefined> {
  const t = await readText(fs, '/etc/image-id', 64 * 1024);
  return t ? Object.fromEntries(parseKeyValues(t.text)) : undefined;
}
