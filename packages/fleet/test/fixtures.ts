import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { amazonAkiGuest, amazonLinuxGuest, buildGuestImage, centos5Guest, ubuntu1204Guest, type GuestFixture } from '@amitrans/testkit';

/** What the test expects of each image, per target: the oracle is the fixture's own design. */
export interface Expected {
  id: string;
  targets: string[];
  outcomes: Record<string, 'works' | 'tweaks' | 'wont' | 'error'>;
  /** A word the reason (wont) or error must contain. */
  why?: string;
}

interface Variant {
  name: string;
  fixture: () => GuestFixture;
  targets: string[];
  outcomes: Expected['outcomes'];
  why?: string;
}

/**
 * Kinds of image of a real fleet, each from the testkit's guest layouts: Amazon Linux (works
 * on xenserver, needs tweaks elsewhere), Ubuntu 12.04 (tweaks), CentOS 5 with only a
 * XenLinux kernel (won't boot on kvm or eucalyptus), an AKI-style image without its kernel
 * (won't anywhere), CentOS 5 with a plain kernel too (tweaks for eucalyptus; for kvm the
 * fixture's stage files are GRUB 0.95's, which translate refuses: a pipeline error).
 */
const VARIANTS: Variant[] = [
  { name: 'amzn', fixture: amazonLinuxGuest, targets: ['xenserver', 'eucalyptus'], outcomes: { xenserver: 'works', eucalyptus: 'tweaks' } },
  { name: 'ubuntu', fixture: () => ubuntu1204Guest(), targets: ['eucalyptus'], outcomes: { eucalyptus: 'tweaks' } },
  { name: 'centos5xen', fixture: () => centos5Guest(), targets: ['kvm', 'eucalyptus'], outcomes: { kvm: 'wont', eucalyptus: 'wont' }, why: 'Xen-PV-only' },
  { name: 'aki', fixture: amazonAkiGuest, targets: ['eucalyptus'], outcomes: { eucalyptus: 'wont' }, why: 'external kernel' },
  { name: 'centos5two', fixture: () => centos5Guest({ plainKernel: true }), targets: ['kvm', 'eucalyptus'], outcomes: { kvm: 'error', eucalyptus: 'tweaks' }, why: 'compat version' },
];

export interface FleetFixtures {
  worklist: string;
  expected: Expected[];
}

/**
 * `count` images (at least 7): the variants in turn, each image its own (a file naming it),
 * plus one corrupt file and one missing source; a fleet JSON-lines work list naming them
 * by relative path. One kvm image gets `bigMiB` of data so that a worker can be killed in
 * the middle of it.
 */
export async function buildFleet(dir: string, count: number, o: { bigMiB?: number } = {}): Promise<FleetFixtures> {
  const lines: string[] = [];
  const expected: Expected[] = [];
  const builds: Promise<void>[] = [];
  for (let i = 0; i < count - 2; i++) {
    const v = VARIANTS[i % VARIANTS.length]!;
    const id = `ami-${v.name}-${String(i).padStart(2, '0')}`;
    const g = v.fixture();
    const files = { ...g.spec.files, '/etc/fleet-image': `${id}\n` };
    builds.push(buildGuestImage({ ...g.spec, files }, join(dir, `${id}.img`), g.image));
    lines.push(JSON.stringify({ id, source: `${id}.img`, targets: v.targets, class: 'pvgrub-hd0', aki: i % 2 ? 'aki-825ea7eb' : 'aki-427d952b' }));
    expected.push({ id, targets: v.targets, outcomes: v.outcomes, ...(v.why ? { why: v.why } : {}) });
  }
  if (o.bigMiB) {
    // Amazon Linux for kvm, with data that takes a while to translate and deliver.
    const g = amazonLinuxGuest();
    const id = 'ami-big-kvm';
    const data = join(dir, 'big.bin');
    await writeFile(data, randomBytes(o.bigMiB * 1024 * 1024));
    builds.push(buildGuestImage({ ...g.spec, files: { ...g.spec.files, '/srv/data.bin': { copy: data } } }, join(dir, `${id}.img`), { ...g.image, size: `${o.bigMiB + 96}M` }));
    lines.push(JSON.stringify({ id, source: `${id}.img`, targets: ['kvm'] }));
    expected.push({ id, targets: ['kvm'], outcomes: { kvm: 'tweaks' } });
  }
  await Promise.all(builds);
  await writeFile(join(dir, 'ami-corrupt-01.img'), randomBytes(3 * 1024 * 1024));
  lines.push(JSON.stringify({ id: 'ami-corrupt-01', source: 'ami-corrupt-01.img', targets: ['kvm'] }));
  expected.push({ id: 'ami-corrupt-01', targets: ['kvm'], outcomes: { kvm: 'error' } });
  lines.push(JSON.stringify({ id: 'ami-missing-01', source: 'no-such-image.img', targets: ['kvm'] }));
  expected.push({ id: 'ami-missing-01', targets: ['kvm'], outcomes: { kvm: 'error' }, why: 'no-such-image.img' });
  const worklist = join(dir, 'worklist.jsonl');
  await writeFile(worklist, `${lines.join('\n')}\n`);
  return { worklist, expected };
}
