import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDebianAmi, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { cli } from './helpers.js';

// Issue 16: translate -t eucalyptus -O bundle makes the EMI and, from the guest's own
// kernel and initrd, the EKI and ERI bundles that Eucalyptus 4 needs to register a PV EMI.
let dir: TmpDir;

beforeAll(async () => {
  dir = await tmpDir('amitrans-translate-bundle-');
  const id = (n: string): Promise<unknown> =>
    run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', dir.file(`${n}.key`), '-out', dir.file(`${n}.crt`), '-subj', `/CN=${n}`, '-days', '2']);
  await Promise.all([id('user'), id('cloud')]);
});
afterAll(async () => {
  await dir.remove();
});

interface Bundled { manifest: string; manifestName: string; prefix: string; imageType: string }

describe('translate -t eucalyptus -O bundle', () => {
  it('EMI, EKI and ERI bundles: the EKI and ERI unbundle to the image\'s own kernel and initrd, the EMI to the translated filesystem', async (ctx) => {
    requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio', 'openssl', 'debugfs', 'e2fsck');
    const ami = dir.file('debian-ami.img');
    await buildDebianAmi(ctx, ami);
    const t = await cli('translate', ami, dir.file('out'), '-t', 'eucalyptus', '-O', 'bundle', '--user', '1234-5678-9012',
      '--ec2cert', dir.file('cloud.crt'), '--cert', dir.file('user.crt'), '--privatekey', dir.file('user.key'), '--prefix', 'debian-emi', '--json');
    expect(t.stderr).toBe('');
    expect(t.code).toBe(0);
    const r = JSON.parse(t.stdout) as { bundle: { emi: Bundled; eki: Bundled; eri: Bundled; register: string[] }; report: { kernels: { vmlinuz: string; initrd: string }[] } };
    const { emi, eki, eri } = r.bundle;
    expect([emi.imageType, eki.imageType, eri.imageType]).toEqual(['machine', 'kernel', 'ramdisk']);
    expect(eki.prefix).toMatch(/^vmlinuz/);
    expect(eri.prefix).toMatch(/^initrd/);
    expect(emi.prefix).toBe('debian-emi');
    const emiXml = readFileSync(emi.manifest, 'latin1');
    // Never left pointing at an Amazon kernel: no kernel_id/ramdisk_id unless given.
    expect(emiXml).not.toMatch(/<kernel_id>|<ramdisk_id>|aki-|ari-/);
    expect(readFileSync(eki.manifest, 'latin1')).toContain('<kernel_id>true</kernel_id></machine_configuration>');
    expect(readFileSync(eri.manifest, 'latin1')).toContain('<ramdisk_id>true</ramdisk_id></machine_configuration>');
    // The register commands, kernel and ramdisk first.
    const reg = r.bundle.register.filter((l) => l.startsWith('euca-register'));
    expect(reg.map((l) => l.split(' ')[1])).toEqual([`BUCKET/PREFIX/${eki.manifestName}`, `BUCKET/PREFIX/${eri.manifestName}`, `BUCKET/PREFIX/${emi.manifestName}`]);
    expect(reg[2]).toContain('--kernel EKI_ID --ramdisk ERI_ID');
    expect(r.bundle.register.some((l) => l.startsWith('aws ec2 register-image --endpoint-url'))).toBe(true);
    // Unbundle all three with the user's key.
    for (const [b, out] of [[emi, 'emi.img'], [eki, 'vmlinuz'], [eri, 'initrd']] as const) {
      const u = await cli('unbundle', b.manifest, dir.file(out), '-k', dir.file('user.key'), '-c', dir.file('user.crt'));
      expect(u.code, u.stderr).toBe(0);
    }
    await run('e2fsck', ['-fn', dir.file('emi.img')]);
    const k = r.report.kernels[0]!;
    await run('debugfs', ['-R', `dump ${k.vmlinuz} ${dir.file('guest-vmlinuz')}`, dir.file('emi.img')]);
    await run('debugfs', ['-R', `dump ${k.initrd} ${dir.file('guest-initrd')}`, dir.file('emi.img')]);
    expect(readFileSync(dir.file('vmlinuz')).equals(readFileSync(dir.file('guest-vmlinuz')))).toBe(true);
    expect(readFileSync(dir.file('initrd')).equals(readFileSync(dir.file('guest-initrd')))).toBe(true);
    expect(readFileSync(dir.file('vmlinuz')).length).toBeGreaterThan(1024 * 1024);
    // The EMI bundle boots with the EKI and ERI bundles as the node controller boots it
    // (fleet.md §6: -kernel EKI -initrd ERI -append "root=/dev/vda1 console=ttyS0", the EMI
    // in partition 1 of a virtio disk, -rtc base=localtime): amitrans verify unbundles all three.
    requireTools(ctx, 'qemu-system-x86_64');
    const saved = process.env.EC2_PRIVATE_KEY;
    process.env.EC2_PRIVATE_KEY = dir.file('user.key');
    try {
      const v = await cli('verify', emi.manifest, '-t', 'eucalyptus', '--kernel', eki.manifest, '--ramdisk', eri.manifest,
        '--expect', 'AMITRANS-BOOT-OK kernel=6\\.1\\.\\d+-\\d+-cloud-amd64 root=/dev/vda1', '--json');
      expect(v.stderr).toBe('');
      const boot = JSON.parse(v.stdout) as { result: string; mode: string; bus: string; command: string[]; lastLines: string[]; notes: string[] };
      expect(boot, boot.lastLines.join('\n')).toMatchObject({ result: 'booted', mode: 'direct-kernel', bus: 'virtio' });
      expect(v.code).toBe(0);
      const arg = (flag: string): string | undefined => boot.command[boot.command.indexOf(flag) + 1];
      expect(arg('-append')).toBe('root=/dev/vda1 console=ttyS0');
      // QEMU got the unbundled EKI and ERI, byte for byte the guest's own kernel and initrd.
      expect(boot.notes.join(' ')).toMatch(/the kernel and ramdisk given/);
      expect(arg('-kernel')).toMatch(/given-kernel$/);
      expect(arg('-initrd')).toMatch(/given-ramdisk$/);
    } finally {
      if (saved === undefined) delete process.env.EC2_PRIVATE_KEY;
      else process.env.EC2_PRIVATE_KEY = saved;
    }
  }, 600_000);

  it('-O bundle is refused for other targets and without the cloud certificate (exit 2)', async () => {
    const other = await cli('translate', dir.file('x.img'), dir.file('o'), '-t', 'kvm', '-O', 'bundle', '--user', '1', '--ec2cert', dir.file('cloud.crt'));
    expect(other.code).toBe(2);
    const saved = process.env.EUCALYPTUS_CERT;
    delete process.env.EUCALYPTUS_CERT;
    try {
      const noCert = await cli('translate', dir.file('x.img'), dir.file('o'), '-t', 'eucalyptus', '-O', 'bundle', '--user', '1');
      expect(noCert.code).toBe(2);
      expect(noCert.stderr).toMatch(/--ec2cert/);
    } finally {
      if (saved !== undefined) process.env.EUCALYPTUS_CERT = saved;
    }
  });
});
