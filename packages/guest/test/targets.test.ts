import { describe, expect, it } from 'vitest';
import {
  BUS_DRIVERS, DISK_TARGETS, TARGETS, TARGET_FACTS, kernelConsoles, rootDevice, targetModules, transformFstab, type Target,
} from '../src/index.js';
import { ec2ImportCommands, nvmeTimeoutArg } from '../src/ec2.js';

describe('the target table', () => {
  it('every target boots from buses that have drivers, and names its root', () => {
    for (const t of TARGETS) {
      const f = TARGET_FACTS[t];
      expect(f.buses.length, t).toBeGreaterThan(0);
      for (const b of f.buses) {
        expect(BUS_DRIVERS[b].length, `${t} ${b}`).toBeGreaterThan(0);
        expect(rootDevice(t, b, f.diskBuild), `${t} ${b}`).toMatch(/^\/dev\/(sd|vd|xvd|nvme\d+n)/);
      }
    }
    expect(DISK_TARGETS).toEqual(['kvm', 'virtualbox', 'ec2-hvm']);
  });

  it('ec2-hvm: root nvme0n1p1 on Nitro, xvda1 on Xen HVM; nvme/ena and xen-blkfront/xen-netfront; ttyS0', () => {
    expect(rootDevice('ec2-hvm', 'nvme', true)).toBe('/dev/nvme0n1p1');
    expect(rootDevice('ec2-hvm', 'xen', true)).toBe('/dev/xvda1');
    expect(targetModules('ec2-hvm', 'nvme', false)).toEqual({ block: 'nvme', net: 'ena' });
    expect(targetModules('ec2-hvm', 'xen', false)).toEqual({ block: 'xen-blkfront', net: 'xen-netfront' });
    expect(kernelConsoles('ec2-hvm', false)).toEqual(['tty0', 'ttyS0,115200n8']);
    expect(TARGET_FACTS['ec2-hvm'].verify).toMatchObject({ mode: 'disk', bus: 'nvme' });
  });

  it('the other targets keep what they had before the table', () => {
    const roots: Record<Target, string> = { kvm: '/dev/vda1', virtualbox: '/dev/sda1', xenserver: '/dev/xvda', eucalyptus: '/dev/sda1', 'ec2-hvm': '/dev/nvme0n1p1' };
    for (const t of TARGETS) expect(rootDevice(t, TARGET_FACTS[t].buses[0]!, TARGET_FACTS[t].diskBuild), t).toBe(roots[t]);
    expect(kernelConsoles('xenserver', true)).toEqual(['xvc0']);
    expect(kernelConsoles('xenserver', false)).toEqual(['hvc0']);
  });
});

describe('EC2 facts', () => {
  it('nvme io_timeout as AWS advises for the kernel version', () => {
    // "for most Linux kernels earlier than version 4.6, this parameter is nvme.io_timeout";
    // "for current kernels, the maximum is 4294967295, while for earlier kernels the maximum is 255".
    expect(nvmeTimeoutArg('3.10.0-1160.el7.x86_64')).toBe('nvme.io_timeout=255');
    expect(nvmeTimeoutArg('4.4.0-1128-aws')).toBe('nvme.io_timeout=255');
    expect(nvmeTimeoutArg('4.9.0-19-cloud-amd64')).toBe('nvme_core.io_timeout=255');
    expect(nvmeTimeoutArg('4.14.355-275.570.amzn2.x86_64')).toBe('nvme_core.io_timeout=255');
    expect(nvmeTimeoutArg('4.15.0-1019-aws')).toBe('nvme_core.io_timeout=4294967295');
    expect(nvmeTimeoutArg('6.1.0-50-cloud-amd64')).toBe('nvme_core.io_timeout=4294967295');
  });

  it('import commands: upload for a local file, none for s3://; the ENA flag follows the verdict', () => {
    const local = ec2ImportCommands({ output: '/tmp/my disk.vmdk', format: 'vmdk', arch: 'i386', ena: false, name: 'web-hvm' });
    expect(local[0]).toBe("aws s3 cp '/tmp/my disk.vmdk' 's3://YOUR-BUCKET/my disk.vmdk'");
    expect(local[1]).toBe("aws ec2 import-snapshot --description 'amitrans web-hvm' --disk-container 'Format=VMDK,UserBucket={S3Bucket=YOUR-BUCKET,S3Key=my disk.vmdk}'");
    expect(local[3]).toMatch(/--architecture i386 --virtualization-type hvm --root-device-name \/dev\/xvda --no-ena-support --boot-mode legacy-bios/);
    const s3 = ec2ImportCommands({ output: 's3://b/k/x.vhd', format: 'vhd', arch: 'x86_64', ena: true, name: 'x-hvm' });
    expect(s3).toHaveLength(3);
    expect(s3[0]).toContain('Format=VHD,UserBucket={S3Bucket=b,S3Key=k/x.vhd}');
    expect(s3[2]).toMatch(/--architecture x86_64 .* --ena-support /);
  });

  it('fstab for ec2-hvm: the root by UUID, other disks keep their mapping names (sd -> xvd) and get nofail', () => {
    const text = '/dev/sda1 / ext3 defaults 1 1\n/dev/sdb /mnt ext3 defaults 0 0\n/dev/xvdc1 /data ext4 noatime 0 2\nproc /proc proc defaults 0 0\n';
    const out = transformFstab(text, { target: 'ec2-hvm', bus: 'nvme', diskBuild: true, root: 'UUID=0f0e', systemd: true });
    expect(out.text).toBe('UUID=0f0e / ext3 defaults 1 1\n/dev/xvdb /mnt ext3 defaults,nofail 0 0\n/dev/xvdc1 /data ext4 noatime,nofail 0 2\nproc /proc proc defaults 0 0\n');
    expect(out.changes.map((c) => c.why).join(' ')).toMatch(/NVMe device names are not stable/);
  });
});
