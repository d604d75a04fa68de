import { describe, expect, it } from 'vitest';
import { requireTools, run } from '@amitrans/testkit';
import {
  commentMetadataFetches,
  mergeChanges,
  sha512Crypt,
  targetModules,
  transformFstab,
  transformGrubLegacy,
  transformIfcfg,
  transformInittab,
  transformModprobe,
  transformSecuretty,
  transformShadow,
  transformSshdConfig,
} from '../src/index.js';

const UUID = '3d1e5c2a-7b4f-4a8e-9c6d-5f0e1a2b3c4d';

// The samples of ../shared/seeds, verbatim (de-indented).
const SEED_CLOUDSTACK_FSTAB = [
  '/dev/xvda  /         ext3    defaults        1 1',
  '/dev/xvdb  /mnt      ext3    defaults        0 0',
  'none       /dev/pts  devpts  gid=5,mode=620  0 0',
  'none       /proc     proc    defaults        0 0',
  'none       /sys      sysfs   defaults        0 0',
  '',
].join('\n');
const SEED_CLOUDSTACK_GRUB_CONF = [
  'default=0',
  'timeout=5',
  'hiddenmenu',
  'title CentOS (2.6.18-164.15.1.el5xen)',
  '   root (hd0,0)',
  '   kernel /boot/vmlinuz-2.6.18-164.15.1.el5xen ro root=/dev/xvda ',
  '   initrd /boot/initrd-2.6.18-164.15.1.el5xen.img',
  '',
].join('\n');
const SEED_ATMOSPHERE_INITTAB = [
  'id:3:initdefault:',
  '',
  '# System initialization.',
  'si::sysinit:/etc/rc.d/rc.sysinit',
  '',
  'l3:3:wait:/etc/rc.d/rc 3',
  '',
  '# Run gettys in standard runlevels',
  '1:2345:respawn:/sbin/mingetty tty1',
  '2:2345:respawn:/sbin/mingetty tty2',
  '',
  '# Run xdm in runlevel 5',
  'x:5:respawn:/etc/X11/prefdm -nodaemon',
  'xvc0:2345:respawn:/sbin/mingetty xvc0',
  '',
].join('\n');
const SEED_ATMOSPHERE_MODPROBE = 'alias scsi_hostadapter xenblk\nalias eth0 xennet\n';
const SEED_ATMOSPHERE_GRUB_CONF = [
  'default=0',
  'timeout=3',
  'splashimage=(hd0,0)/boot/grub/splash.xpm.gz',
  'title CentOS (2.6.18-348.3.1.el5)',
  '    root (hd0,0)',
  '    kernel /boot/vmlinuz-2.6.18-348.3.1.el5 root=/dev/sda1 ro enforcing=0',
  '    initrd /boot/initrd-2.6.18-348.3.1.el5.img',
  '',
].join('\n');
// ec2-ami-tools' LEGACY fstab: the m1.small layout (root, ephemeral, swap).
const EC2_LEGACY_FSTAB = '/dev/sda1 / ext3 defaults 1 1\n/dev/sda2 /mnt ext3 defaults 0 0\n/dev/sda3 swap swap defaults 0 0\nnone /proc proc defaults 0 0\n';

describe('fstab step', () => {
  it('CloudStack sample, for kvm (virtio disk build, root by UUID)', () => {
    const r = transformFstab(SEED_CLOUDSTACK_FSTAB, { target: 'kvm', bus: 'virtio', diskBuild: true, root: `UUID=${UUID}` });
    expect(r.text).toBe([
      `UUID=${UUID}  /         ext3    defaults        1 1`,
      '/dev/vdb  /mnt      ext3    defaults,nofail        0 0',
      'none       /dev/pts  devpts  gid=5,mode=620  0 0',
      'none       /proc     proc    defaults        0 0',
      'none       /sys      sysfs   defaults        0 0',
      '',
    ].join('\n'));
    expect(r.changes.map((c) => c.line)).toEqual([0, 1]);
  });
  it('the same sample back to XenServer by device name leaves root alone and marks the ephemeral disk nofail', () => {
    const r = transformFstab(SEED_CLOUDSTACK_FSTAB, { target: 'xenserver', bus: 'xen', diskBuild: false, root: '/dev/xvda' });
    expect(r.text.split('\n').slice(0, 2)).toEqual(['/dev/xvda  /         ext3    defaults        1 1', '/dev/xvdb  /mnt      ext3    defaults,nofail        0 0']);
  });
  it('the m1.small layout for Eucalyptus keeps sda1/sda2/sda3', () => {
    const r = transformFstab(EC2_LEGACY_FSTAB, { target: 'eucalyptus', bus: 'virtio', diskBuild: false, root: '/dev/sda1' });
    expect(r.text).toBe(EC2_LEGACY_FSTAB);
    expect(r.changes).toEqual([]);
  });
  it('an xvd AMI for Eucalyptus: ephemeral xvdb becomes sda2, swap sda3', () => {
    const r = transformFstab('/dev/xvda1 / ext3 defaults 1 1\n/dev/xvdb /mnt auto defaults 0 2\n/dev/xvdc none swap sw 0 0\n', { target: 'eucalyptus', bus: 'virtio', diskBuild: false, root: 'LABEL=root' });
    expect(r.text).toBe('LABEL=root / ext3 defaults 1 1\n/dev/sda2 /mnt auto defaults 0 2\n/dev/sda3 none swap sw 0 0\n');
  });
  it('virtualbox over IDE, root by device: sda1; instance-store disks nofail; LABEL and UUID of others untouched', () => {
    const r = transformFstab('LABEL=/ / ext4 defaults 1 1\n/dev/sdb /media/ephemeral0 auto defaults,comment=cloudconfig 0 2\nUUID=abcd /data xfs defaults 0 0\n', { target: 'virtualbox', bus: 'ide', diskBuild: true, root: '/dev/sda1' });
    expect(r.text).toBe('/dev/sda1 / ext4 defaults 1 1\n/dev/sdb /media/ephemeral0 auto defaults,comment=cloudconfig,nofail 0 2\nUUID=abcd /data xfs defaults 0 0\n');
  });
});

describe('bootloader step', () => {
  it('CloudStack grub.conf for XenServer: console xvc0 for the XenLinux kernel, root by device, no serial stanza', () => {
    const r = transformGrubLegacy(SEED_CLOUDSTACK_GRUB_CONF, {
      kernel: '/boot/vmlinuz-2.6.18-164.15.1.el5xen', initrd: '/boot/initrd-2.6.18-164.15.1.el5xen.img', title: 'x',
      rootArg: '/dev/xvda', consoles: ['xvc0'], serial: false,
    });
    expect(r.text).toBe([
      'default 0',
      'timeout=5',
      'hiddenmenu',
      'title CentOS (2.6.18-164.15.1.el5xen)',
      '   root (hd0,0)',
      '   kernel /boot/vmlinuz-2.6.18-164.15.1.el5xen ro root=/dev/xvda console=xvc0',
      '   initrd /boot/initrd-2.6.18-164.15.1.el5xen.img',
      '',
    ].join('\n'));
  });
  it('Atmosphere grub.conf for VirtualBox: serial stanza, root by UUID, consoles, enforcing=0 kept', () => {
    const r = transformGrubLegacy(SEED_ATMOSPHERE_GRUB_CONF, {
      kernel: '/boot/vmlinuz-2.6.18-348.3.1.el5', initrd: '/boot/initrd-2.6.18-348.3.1.el5.img', title: 'x', grubRoot: '(hd0,0)',
      rootArg: `UUID=${UUID}`, consoles: ['tty0', 'ttyS0,115200n8'], serial: true,
    });
    expect(r.text).toBe([
      'default 0',
      'serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1',
      'terminal --timeout=2 serial console',
      'timeout=3',
      'splashimage=(hd0,0)/boot/grub/splash.xpm.gz',
      'title CentOS (2.6.18-348.3.1.el5)',
      '    root (hd0,0)',
      `    kernel /boot/vmlinuz-2.6.18-348.3.1.el5 ro enforcing=0 root=UUID=${UUID} console=tty0 console=ttyS0,115200n8`,
      '    initrd /boot/initrd-2.6.18-348.3.1.el5.img',
      '',
    ].join('\n'));
  });
  it('a pv-grub menu.lst for KVM: (hd0) -> (hd0,0), the chosen kernel first and default, others kept', () => {
    const menu = [
      'default 0',
      'timeout 1',
      '# a comment',
      'title old xen kernel',
      'root (hd0)',
      'kernel /boot/vmlinuz-2.6.18-xenU root=/dev/sda1 ro',
      'title Ubuntu 12.04 LTS, kernel 3.2.0-23-virtual',
      'root (hd0)',
      'kernel /boot/vmlinuz-3.2.0-23-virtual root=LABEL=cloudimg-rootfs ro console=hvc0 quiet',
      'initrd /boot/initrd.img-3.2.0-23-virtual',
      '',
    ].join('\n');
    const r = transformGrubLegacy(menu, {
      kernel: '/boot/vmlinuz-3.2.0-23-virtual', initrd: '/boot/initrd.img-3.2.0-23-virtual', title: 'x', grubRoot: '(hd0,0)',
      rootArg: 'LABEL=cloudimg-rootfs', consoles: ['tty0', 'ttyS0,115200n8'], serial: true,
    });
    expect(r.text).toBe([
      'default 0',
      'serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1',
      'terminal --timeout=2 serial console',
      'timeout 1',
      '# a comment',
      'title Ubuntu 12.04 LTS, kernel 3.2.0-23-virtual',
      'root (hd0,0)',
      'kernel /boot/vmlinuz-3.2.0-23-virtual ro quiet root=LABEL=cloudimg-rootfs console=tty0 console=ttyS0,115200n8',
      'initrd /boot/initrd.img-3.2.0-23-virtual',
      'title old xen kernel',
      'root (hd0,0)',
      'kernel /boot/vmlinuz-2.6.18-xenU ro root=LABEL=cloudimg-rootfs console=tty0 console=ttyS0,115200n8',
      '',
    ].join('\n'));
  });
  it('writes a whole menu.lst when the image has none', () => {
    const r = transformGrubLegacy('', {
      kernel: '/boot/vmlinuz-6.1.0-13-cloud-amd64', initrd: '/boot/initrd.img-6.1.0-13-cloud-amd64', title: 'Debian GNU/Linux 12 (6.1.0-13-cloud-amd64)',
      grubRoot: '(hd0,0)', rootArg: `UUID=${UUID}`, consoles: ['ttyS0,115200n8'], serial: false,
    });
    expect(r.text).toBe([
      'default 0',
      'timeout 5',
      'title Debian GNU/Linux 12 (6.1.0-13-cloud-amd64)',
      '\troot (hd0,0)',
      `\tkernel /boot/vmlinuz-6.1.0-13-cloud-amd64 root=UUID=${UUID} console=ttyS0,115200n8`,
      '\tinitrd /boot/initrd.img-6.1.0-13-cloud-amd64',
      '',
    ].join('\n'));
  });
});

describe('consoles step', () => {
  it('Atmosphere inittab: the xvc0 getty moves to ttyS0 with a short id', () => {
    const r = transformInittab(SEED_ATMOSPHERE_INITTAB, ['hvc0', 'xvc0'], 'ttyS0');
    expect(r.text).toBe(SEED_ATMOSPHERE_INITTAB.replace('xvc0:2345:respawn:/sbin/mingetty xvc0', 'T0:2345:respawn:/sbin/mingetty ttyS0'));
    expect(r.changes).toHaveLength(1);
  });
  it('CloudStack direction: a ttyS0 getty moves to xvc0', () => {
    const r = transformInittab('T0:2345:respawn:/sbin/agetty -L ttyS0 9600 vt100\n', ['ttyS0', 'hvc0'], 'xvc0');
    expect(r.text).toBe('co:2345:respawn:/sbin/agetty -L xvc0 9600 vt100\n');
  });
  it('securetty: xvc0 becomes ttyS0 once; hvc0 goes', () => {
    expect(transformSecuretty('console\nvc/1\ntty1\nxvc0\nhvc0\n', ['hvc0', 'xvc0'], 'ttyS0').text).toBe('console\nvc/1\ntty1\nttyS0\n');
    expect(transformSecuretty('console\ntty1\n', ['hvc0', 'xvc0'], 'ttyS0').text).toBe('console\ntty1\nttyS0\n');
    expect(transformSecuretty('console\nttyS0\nhvc0\n', ['hvc0', 'xvc0'], 'ttyS0').text).toBe('console\nttyS0\n');
  });
});

describe('modules step', () => {
  it('Atmosphere modprobe.conf for each target', () => {
    const kvm = transformModprobe(SEED_ATMOSPHERE_MODPROBE, targetModules('kvm', 'virtio', false));
    expect(kvm.text).toBe('alias scsi_hostadapter virtio_blk\nalias eth0 virtio_net\n');
    expect(transformModprobe(SEED_ATMOSPHERE_MODPROBE, targetModules('virtualbox', 'sata', false)).text).toBe('alias scsi_hostadapter ahci\nalias eth0 e1000\n');
    expect(transformModprobe(SEED_ATMOSPHERE_MODPROBE, targetModules('virtualbox', 'ide', false)).text).toBe('alias scsi_hostadapter ata_piix\nalias eth0 e1000\n');
    expect(transformModprobe(kvm.text, targetModules('xenserver', 'xen', true)).text).toBe(SEED_ATMOSPHERE_MODPROBE);
    expect(transformModprobe(kvm.text, targetModules('xenserver', 'xen', false)).text).toBe('alias scsi_hostadapter xen-blkfront\nalias eth0 xen-netfront\n');
  });
  it('leaves unrelated aliases and options alone', () => {
    const text = 'alias snd-card-0 snd-intel8x0\noptions snd-card-0 index=0\nalias scsi_hostadapter1 ahci\nalias eth1 xennet\n';
    expect(transformModprobe(text, targetModules('kvm', 'virtio', false)).text).toBe('alias snd-card-0 snd-intel8x0\noptions snd-card-0 index=0\nalias scsi_hostadapter1 virtio_blk\nalias eth1 virtio_net\n');
  });
});

describe('network, xenserver and clean pieces', () => {
  it('ifcfg loses HWADDR only', () => {
    expect(transformIfcfg('DEVICE=eth0\nBOOTPROTO=dhcp\nHWADDR=12:31:39:0A:2B:3C\nONBOOT=yes\n').text).toBe('DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\n');
  });
  it('rc.local metadata fetches are commented out, other lines kept', () => {
    expect(commentMetadataFetches('#!/bin/sh\ntouch /var/lock/subsys/local\ncurl http://169.254.169.254/latest/user-data | sh\n').text)
      .toBe('#!/bin/sh\ntouch /var/lock/subsys/local\n# amitrans: no metadata service on this target: curl http://169.254.169.254/latest/user-data | sh\n');
  });
  it('sshd_config: active lines replaced, commented defaults followed by the setting', () => {
    expect(transformSshdConfig('Port 22\n#PermitRootLogin yes\nPasswordAuthentication no\nUsePAM yes\n', { PermitRootLogin: 'yes', PasswordAuthentication: 'yes' }).text)
      .toBe('Port 22\n#PermitRootLogin yes\nPermitRootLogin yes\nPasswordAuthentication yes\nUsePAM yes\n');
  });
  it('shadow: only root\'s password field changes', () => {
    expect(transformShadow('root:!:15000:0:99999:7:::\nbin:*:15000:0:99999:7:::\n', '$6$x$y').text).toBe('root:$6$x$y:15000:0:99999:7:::\nbin:*:15000:0:99999:7:::\n');
  });
  it('SHA-512 crypt matches the specification\'s vectors and openssl', async (ctx) => {
    // Vectors from Ulrich Drepper's SHA-crypt specification.
    expect(sha512Crypt('Hello world!', 'saltstring')).toBe('$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1');
    expect(sha512Crypt('Hello world!', 'saltstringsaltstring', 10000)).toBe('$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.');
    requireTools(ctx, 'openssl');
    for (const [pw, salt] of [['s3cret', 'abcdefgh'], ['x', 'x'], ['a'.repeat(100), '0123456789abcdef']] as const) {
      expect(sha512Crypt(pw, salt)).toBe((await run('openssl', ['passwd', '-6', '-salt', salt, pw])).stdout.trim());
    }
  });
});

describe('mergeChanges', () => {
  it('keeps one change per file and action: the first place and removed lines, the last result and reason', () => {
    const merged = mergeChanges([
      { step: 'bootloader', file: '/boot/grub/grub.conf', action: 'symlink', after: ['-> grub.cfg'], why: 'one file' },
      { step: 'fstab', file: '/etc/fstab', action: 'edit', before: ['a'], after: ['b'], why: 'root' },
      { step: 'bootloader', file: '/boot/grub/grub.conf', action: 'symlink', after: ['-> menu.lst'], why: 'stay one file' },
      { step: 'fstab', file: '/etc/fstab', action: 'edit', before: ['b'], after: ['c'], why: 'again' },
      { step: 'clean', file: '/etc/fstab', action: 'delete', why: 'other action' },
    ]);
    expect(merged).toEqual([
      { step: 'bootloader', file: '/boot/grub/grub.conf', action: 'symlink', after: ['-> menu.lst'], why: 'stay one file' },
      { step: 'fstab', file: '/etc/fstab', action: 'edit', before: ['a'], after: ['c'], why: 'again' },
      { step: 'clean', file: '/etc/fstab', action: 'delete', why: 'other action' },
    ]);
  });
});
