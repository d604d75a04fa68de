import { describe, expect, it } from 'vitest';
import { NOTES_AKIS, OTHER_AKIS } from '@amitrans/testkit';
import { PV_GRUB_AKIS, lookupPvGrubAki, parsePvGrubName } from '../src/index.js';

describe('the built-in pv-grub AKI table', () => {
  it('names each AKI once, each row with its source', () => {
    const ids = PV_GRUB_AKIS.map((r) => r.aki);
    expect(new Set(ids).size).toBe(ids.length);
    for (const row of PV_GRUB_AKIS) {
      expect(row.aki).toMatch(/^aki-[0-9a-f]{8}$/);
      expect(row.source.length).toBeGreaterThan(10);
      expect(['1.01', '1.02', '1.03', '1.04', '1.05']).toContain(row.version);
    }
  });

  it('has the notes\' 12 us-east-1 AKIs with their version, disk and arch (fleet.md §1.1)', () => {
    for (const a of NOTES_AKIS) {
      expect(lookupPvGrubAki(a.aki), a.aki).toMatchObject({ version: a.version, disk: a.disk, arch: a.arch, region: 'us-east-1' });
    }
  });

  it('covers every release and region of the specs, and Red Hat\'s own', () => {
    expect(lookupPvGrubAki('aki-919dcaf8')).toMatchObject({ version: '1.04', disk: 'hd0', arch: 'x86_64', region: 'us-east-1' });
    expect(lookupPvGrubAki('aki-5c21674b')).toMatchObject({ version: '1.05', disk: 'hd0', arch: 'x86_64', region: 'us-east-1' });
    expect(lookupPvGrubAki('aki-3e99283f')).toMatchObject({ version: '1.03', disk: 'hd00', arch: 'i386', region: 'ap-northeast-1' });
    // fleet.md footnotes ² and ³: the comment (hd0) wins over cloudyscripts' swapped map.
    expect(lookupPvGrubAki('aki-d209a2d3')).toMatchObject({ version: '1.01', disk: 'hd0', region: 'ap-northeast-1' });
    expect(lookupPvGrubAki('aki-bc3ce3a1')).toMatchObject({ version: '1.02', disk: 'hd0', region: 'sa-east-1' });
    expect(lookupPvGrubAki('aki-08ed0761')).toMatchObject({ vendor: 'redhat', arch: 'x86_64' });
    expect(lookupPvGrubAki('aki-320ebd56')).toMatchObject({ version: '1.04', region: 'ca-central-1' });
    const regions = new Set(PV_GRUB_AKIS.map((r) => r.region));
    expect(regions.size).toBe(15);
    for (const other of OTHER_AKIS) expect(lookupPvGrubAki(other)).toBeUndefined();
  });
});

describe('pv-grub names', () => {
  it('reads both spellings, with or without bucket and manifest', () => {
    expect(parsePvGrubName('pv-grub-hd0-V1.01-x86_64.gz')).toEqual({ disk: 'hd0', version: '1.01', arch: 'x86_64', vendor: 'amazon' });
    expect(parsePvGrubName('pv-grub-hd00_1.03-i386.gz')).toEqual({ disk: 'hd00', version: '1.03', arch: 'i386', vendor: 'amazon' });
    expect(parsePvGrubName('ec2-public-images-us-west-2/pv-grub-hd0_1.03-x86_64.gz.manifest.xml')).toMatchObject({ disk: 'hd0', version: '1.03' });
    expect(parsePvGrubName('amazon/pv-grub-hd0_1.05-x86_64.gz')).toMatchObject({ version: '1.05' });
    expect(parsePvGrubName('rh-bucket/RH-pv-grub-hd0-V1.01-i386.gz.manifest.xml')).toMatchObject({ vendor: 'redhat', arch: 'i386' });
    expect(parsePvGrubName('ec2-public-images/vmlinuz-2.6.21.7-2.fc8xen.manifest.xml')).toBeUndefined();
    expect(parsePvGrubName('ubuntu-kernel-2.6.31-300-ec2-i386')).toBeUndefined();
  });
});
