import { exists, list, resolve, type GuestFs } from './fs.js';

/** The guest's PID 1, which decides what /etc/fstab options and first-boot hooks mean. */
export type InitSystem = 'systemd' | 'upstart' | 'sysvinit' | 'unknown';

export async function detectInit(fs: GuestFs): Promise<InitSystem> {
  const init = await resolve(fs, '/sbin/init');
  if (init && /\/systemd$/.test(init.path)) return 'systemd';
  // Upstart's init reads /etc/init/*.conf jobs and ships initctl.
  if (init && (await exists(fs, '/sbin/initctl')) && (await list(fs, '/etc/init')).some((n) => n.endsWith('.conf'))) return 'upstart';
  if (init && (await exists(fs, '/etc/inittab'))) return 'sysvinit';
  return 'unknown';
}
