import { describe, expect, it } from 'vitest';
import {
  compareVersions,
  detectConsoles,
  detectDistro,
  parseFstab,
  parseGrub2,
  parseGrubLegacy,
  pickInitrd,
  readText,
  resolve,
} from '../src/index.js';
import { MemFs } from './memfs.js';

describe('resolve (symlinks inside the guest)', () => {
  it('follows absolute and relative links inside the guest root', async () => {
    const fs = new MemFs().file('/etc/real', 'x').link('/etc/abs', '/etc/real').link('/etc/rel', 'real').link('/boot/grub/menu.lst', './grub.conf').file('/boot/grub/grub.conf', 'y');
    expect((await resolve(fs, '/etc/abs'))?.path).toBe('/etc/real');
    expect((await resolve(fs, '/etc/rel'))?.path).toBe('/etc/real');
    expect((await readText(fs, '/boot/grub/menu.lst'))?.text).toBe('y');
  });
  it('never leaves the guest root through .. or absolute links', async () => {
    const fs = new MemFs().file('/etc/passwd', 'guest').link('/a/up', '../../../../etc/passwd').link('/b', '/../../etc/passwd');
    expect((await resolve(fs, '/a/up'))?.path).toBe('/etc/passwd');
    expect((await resolve(fs, '/b'))?.path).toBe('/etc/passwd');
  });
  it('reports a symlink loop as an ImageError, not a hang', async () => {
    const fs = new MemFs().link('/etc/fstab', '/etc/fstab2').link('/etc/fstab2', '/etc/fstab');
    await expect(resolve(fs, '/etc/fstab')).rejects.toMatchObject({ code: 'E_LOOP' });
  });
  it('reads at most the cap of a huge file', async () => {
    const fs = new MemFs().file('/boot/grub/menu.lst', new Uint8Array(3 * 1024 * 1024).fill(0x61));
    const t = await readText(fs, '/boot/grub/menu.lst');
    expect(t?.truncated).toBe(true);
    expect(t?.text.length).toBe(1024 * 1024);
  });
});

describe('GRUB configuration', () => {
  it('parses a pv-grub menu.lst', () => {
    const cfg = parseGrubLegacy('/boot/grub/menu.lst', [
      'default 1',
      'timeout 3',
      'hiddenmenu',
      'title Ubuntu 12.04, kernel 3.2.0-23-virtual',
      '    root (hd0)',
      '    kernel /boot/vmlinuz-3.2.0-23-virtual root=LABEL=cloudimg-rootfs ro console=hvc0',
      '    initrd /boot/initrd.img-3.2.0-23-virtual',
      'title CentOS (2.6.18-164.15.1.el5xen)',
      '\troot (hd0,0)',
      '\tkernel (hd0,0)/boot/vmlinuz-2.6.18-164.15.1.el5xen ro root=/dev/xvda console=xvc0 console=tty0',
      '\tinitrd /boot/initrd-2.6.18-164.15.1.el5xen.img',
    ].join('\n'));
    expect(cfg.defaultIndex).toBe(1);
    expect(cfg.timeout).toBe(3);
    expect(cfg.hiddenmenu).toBe(true);
    expect(cfg.entries).toHaveLength(2);
    expect(cfg.entries[0]).toMatchObject({ root: '(hd0)', kernel: '/boot/vmlinuz-3.2.0-23-virtual', rootArg: 'LABEL=cloudimg-rootfs', consoles: ['hvc0'], initrd: '/boot/initrd.img-3.2.0-23-virtual' });
    expect(cfg.entries[1]).toMatchObject({ root: '(hd0,0)', kernel: '/boot/vmlinuz-2.6.18-164.15.1.el5xen', rootArg: '/dev/xvda', consoles: ['xvc0', 'tty0'] });
  });
  it('parses grub.conf with default=0 and GRUB 2 menu entries', () => {
    expect(parseGrubLegacy('/boot/grub/grub.conf', 'default=0\ntimeout=5\ntitle x\nkernel /vmlinuz root=/dev/sda1\n').entries[0]?.rootArg).toBe('/dev/sda1');
    const g2 = parseGrub2('/boot/grub/grub.cfg', [
      "set default=\"0\"",
      "menuentry 'Debian GNU/Linux' --class debian {",
      "  if true; then",
      "    linux /boot/vmlinuz-6.1.0-13-cloud-amd64 root=UUID=1234 ro console=ttyS0",
      "  fi",
      "  initrd /boot/initrd.img-6.1.0-13-cloud-amd64",
      "}",
    ].join('\n'));
    expect(g2.entries).toEqual([expect.objectContaining({ title: 'Debian GNU/Linux', kernel: '/boot/vmlinuz-6.1.0-13-cloud-amd64', initrd: '/boot/initrd.img-6.1.0-13-cloud-amd64', rootArg: 'UUID=1234', consoles: ['ttyS0'] })]);
  });
});

describe('fstab, consoles, distro, kernels', () => {
  it('parses fstab entries by kind', () => {
    const e = parseFstab('# comment\n/dev/sda1 / ext3 defaults 1 1\nLABEL=cloudimg-rootfs / ext4 defaults 0 0\nUUID=abc /boot ext2 ro\nnone /proc proc defaults 0 0\n');
    expect(e.map((x) => [x.spec, x.kind, x.mountpoint, x.line])).toEqual([
      ['/dev/sda1', 'device', '/', 1], ['LABEL=cloudimg-rootfs', 'label', '/', 2], ['UUID=abc', 'uuid', '/boot', 3], ['none', 'other', '/proc', 4],
    ]);
    expect(e[2]!.options).toEqual(['ro']);
  });
  it('finds consoles in inittab, securetty, systemd and upstart', async () => {
    const fs = new MemFs()
      .file('/etc/inittab', 'id:3:initdefault:\n1:2345:respawn:/sbin/mingetty tty1\nco:2345:respawn:/sbin/agetty xvc0 9600 vt100-nav\n#x:2345:respawn:/sbin/mingetty hvc0\n')
      .file('/etc/securetty', 'console\nxvc0\n')
      .link('/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service', '/lib/systemd/system/serial-getty@.service')
      .file('/etc/init/hvc0.conf', 'exec /sbin/getty -8 38400 hvc0');
    const c = await detectConsoles(fs);
    expect(c.map((x) => `${x.source}:${x.device}`)).toEqual(['inittab:tty1', 'inittab:xvc0', 'securetty:console', 'securetty:xvc0', 'systemd:hvc0', 'upstart:hvc0']);
  });
  it('recognises Amazon Linux from system-release and os-release', async () => {
    expect(await detectDistro(new MemFs().file('/etc/system-release', 'Amazon Linux AMI release 2013.09\n'))).toMatchObject({ id: 'amzn', family: 'amazon', version: '2013.09' });
    expect(await detectDistro(new MemFs().file('/etc/os-release', 'NAME="Amazon Linux"\nVERSION="2"\nID="amzn"\nID_LIKE="centos rhel fedora"\nVERSION_ID="2"\n'))).toMatchObject({ id: 'amzn', family: 'amazon', version: '2' });
    expect(await detectDistro(new MemFs().file('/etc/redhat-release', 'CentOS release 5.11 (Final)\n'))).toMatchObject({ id: 'centos', family: 'redhat', version: '5.11', name: 'CentOS' });
    expect(await detectDistro(new MemFs().file('/etc/lsb-release', 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=12.04\n'))).toMatchObject({ id: 'ubuntu', family: 'debian', version: '12.04' });
    expect(await detectDistro(new MemFs().file('/etc/debian_version', '7.11\n'))).toMatchObject({ id: 'debian', version: '7.11' });
  });
  it('picks the shortest initrd name so el5 and el5xen are told apart', () => {
    const boot = ['initrd-2.6.18-164.el5xen.img', 'initrd-2.6.18-164.el5.img', 'initrd-2.6.18-164.el5kdump.img', 'initrd.img-3.2.0-23-virtual'];
    expect(pickInitrd(boot, '2.6.18-164.el5')).toBe('initrd-2.6.18-164.el5.img');
    expect(pickInitrd(boot, '2.6.18-164.el5xen')).toBe('initrd-2.6.18-164.el5xen.img');
    expect(pickInitrd(boot, '3.2.0-23-virtual')).toBe('initrd.img-3.2.0-23-virtual');
    expect(pickInitrd(boot, '4.0')).toBeUndefined();
  });
  it('compares kernel versions numerically', () => {
    expect(compareVersions('2.6.32-10', '2.6.32-5')).toBeGreaterThan(0);
    expect(compareVersions('3.2.0', '3.2.0')).toBe(0);
    expect(compareVersions('2.6.18-164.15.1.el5xen', '2.6.18-164.6.1.el5')).toBeGreaterThan(0);
  });
});
