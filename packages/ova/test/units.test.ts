import { describe, expect, it } from 'vitest';
import { ImageError } from '@amitrans/block';
import { prng } from '@amitrans/testkit';
import { allocationUnitBytes, checkMemberName, ovfOsType, parseTarHeader, parseXml, serializeTarHeader, USTAR_MAX_SIZE } from '../src/index.js';

describe('tar headers', () => {
  it('round-trip names, sizes (octal and base-256) and times', () => {
    const rnd = prng(5);
    for (let i = 0; i < 2000; i++) {
      const size = rnd.next() < 0.5 ? rnd.int(0, USTAR_MAX_SIZE) : USTAR_MAX_SIZE + rnd.int(1, 2 ** 40) * 512;
      const name = `${'abcdefghij'.slice(0, rnd.int(1, 10))}-${i}.vmdk`;
      const h = parseTarHeader(serializeTarHeader({ name, size, mtime: rnd.int(0, 2 ** 32) }));
      expect([h.name, h.size, h.magic, h.typeflag]).toEqual([name, size, 'ustar', '0']);
    }
  });

  it('splits a long path into prefix and name, refuses what does not fit', () => {
    const dir = 'd'.repeat(120);
    expect(parseTarHeader(serializeTarHeader({ name: `${dir}/vm.ovf`, size: 1, mtime: 0 })).name).toBe(`${dir}/vm.ovf`);
    expect(() => serializeTarHeader({ name: 'x'.repeat(101), size: 1, mtime: 0 })).toThrow(ImageError);
  });

  it('a damaged checksum is E_BAD_CHECKSUM', () => {
    const block = serializeTarHeader({ name: 'a', size: 1, mtime: 0 });
    block[0] = 0x62;
    expect(() => parseTarHeader(block)).toThrow(expect.objectContaining({ code: 'E_BAD_CHECKSUM' }));
  });
});

describe('member names', () => {
  it('accepts plain relative names, refuses anything that climbs out', () => {
    const where = { structure: 'tar member name', offset: 0 };
    for (const ok of ['vm.ovf', 'dir/vm-disk1.vmdk', 'a..b.vmdk', '..hidden']) expect(() => checkMemberName(ok, where)).not.toThrow();
    for (const bad of ['../x', 'a/../../x', '/abs', 'C:x', 'a\\b', 'http://h/x', '', 'a\0b', '..']) {
      expect(() => checkMemberName(bad, where), bad).toThrow(expect.objectContaining({ reason: 'unsafe-name' }));
    }
  });
});

describe('OVF pieces', () => {
  it('OS types for the distributions the inspector reports', () => {
    expect(ovfOsType('debian', 'x86_64')).toEqual({ id: 96, description: 'Debian 64-Bit', vbox: 'Debian_64' });
    expect(ovfOsType('debian', 'i386')).toEqual({ id: 95, description: 'Debian', vbox: 'Debian' });
    expect(ovfOsType('ubuntu', 'x86_64').id).toBe(94);
    expect(ovfOsType('centos', 'x86_64').id).toBe(107);
    expect(ovfOsType('rhel', 'x86_64').id).toBe(80);
    expect(ovfOsType('amzn', 'x86_64')).toMatchObject({ id: 101, description: 'Amazon Linux 64-Bit' });
    expect(ovfOsType()).toEqual({ id: 101, description: 'Linux 64-Bit', vbox: 'Linux26_64' });
  });

  it('allocation units', () => {
    expect(allocationUnitBytes(undefined)).toBe(1);
    expect(allocationUnitBytes('byte')).toBe(1);
    expect(allocationUnitBytes('byte * 2^20')).toBe(2 ** 20);
    expect(allocationUnitBytes('byte*2^30')).toBe(2 ** 30);
    expect(allocationUnitBytes('byte * 10^6')).toBe(1e6);
    expect(allocationUnitBytes('GigaBytes')).toBe(2 ** 30);
    expect(() => allocationUnitBytes('furlongs')).toThrow(ImageError);
  });

  it('XML: entities, CDATA, comments, prefixes; malformed input is an ImageError', () => {
    const root = parseXml('<?xml version="1.0"?><!-- c --><a:E xmlns:a="u" k="x &amp; &#x41;&#66;"><b>1 &lt; 2</b><![CDATA[<raw>]]></a:E>');
    expect([root.name, root.local, root.attributes.get('k')]).toEqual(['a:E', 'E', 'x & AB']);
    expect(root.children[0]!.text).toBe('1 < 2');
    expect(root.text).toBe('<raw>');
    for (const bad of ['<a>', '<a></b>', '<a x=1/>', '<a x="1" x="2"/>', '<a>&bogus;</a>', '<a/><b/>', 'text', '<a>&</a>', '']) {
      expect(() => parseXml(bad), bad).toThrow(ImageError);
    }
  });
});
