import { describe, expect, it } from 'vitest';
import { prng } from '@amitrans/testkit';
import { FleetError, parseWorklist, reasonKind, esc, buildReport, renderReportHtml, type ImageResult } from '../src/index.js';

describe('work lists', () => {
  it("reads the catalog's --worklist lines: instance-store locations become s3:// manifests, EBS snapshots have no source", () => {
    const text = [
      JSON.stringify({ id: 'ami-0123abcd', location: 'my-bucket/images/web.manifest.xml', snapshot: undefined, class: 'pvgrub-hd0', arch: 'x86_64', rootDeviceType: 'instance-store', pvgrub: { aki: 'aki-825ea7eb', version: '1.02', disk: 'hd0' }, targets: ['kvm', 'virtualbox', 'xenserver', 'eucalyptus'] }),
      JSON.stringify({ id: 'ami-4567ef01', snapshot: 'snap-1234', class: 'pvgrub-hd00', arch: 'i386', rootDeviceType: 'ebs', pvgrub: { aki: 'aki-525ea73b', version: '1.02', disk: 'hd00' }, targets: ['kvm'] }),
    ].join('\n');
    const items = parseWorklist(text, 'w.jsonl');
    expect(items[0]).toMatchObject({ id: 'ami-0123abcd', source: 's3://my-bucket/images/web.manifest.xml', meta: { class: 'pvgrub-hd0', aki: 'aki-825ea7eb', arch: 'x86_64' }, targets: ['kvm', 'virtualbox', 'xenserver', 'eucalyptus'], line: 1 });
    expect(items[1]!.source).toBeUndefined();
    expect(items[1]!.sourceNote).toContain('snap-1234');
    expect(items[1]!.targets).toEqual(['kvm']);
  });

  it('reads fleet JSON lines and CSV alike; relative paths from the base directory; default targets', () => {
    const json = parseWorklist('{"id":"a1","source":"imgs/a.img","targets":["kvm"]}\n\n{"id":"b-2","source":"https://h/x.img"}\n', 'l', { baseDir: '/data', targets: ['xenserver'] });
    const csv = parseWorklist('id,source,targets\r\na1,imgs/a.img,kvm\r\n"b-2","https://h/x.img",\r\n', 'l.csv', { baseDir: '/data', targets: ['xenserver'] });
    for (const items of [json, csv]) {
      expect(items.map((i) => [i.id, i.source, i.targets])).toEqual([['a1', '/data/imgs/a.img', ['kvm']], ['b-2', 'https://h/x.img', ['xenserver']]]);
    }
    expect(parseWorklist('id,source,targets\nx,/a b.img,"kvm;eucalyptus"\n', 'c')[0]!.targets).toEqual(['kvm', 'eucalyptus']);
  });

  it('refuses with the file, the line and what is wrong', () => {
    const bad: [string, RegExp][] = [
      ['', /empty/],
      ['{"id":"a","source":"x"}\n{"id":"a","source":"y"}', /l:2: image a is listed twice \(first at line 1\)/],
      ['{"id":"12345","source":"x"}', /l:1: id "12345"/],
      ['{"id":"a:b","source":"x"}', /l:1: id "a:b"/],
      ['{"id":"a","source":"x","targets":["hyperv"]}', /unknown target "hyperv"/],
      ['{"id":"a","source":"x","targets":[]}', /non-empty/],
      ['{"id":"a","source":5}', /source must be a string/],
      ['{"id":"a"', /l:1: not JSON/],
      ['[1]', /l:1: not a work list/],
      ['name,url\nx,y', /not a work list/],
      ['id,source\n"a,b', /unterminated/],
      ['id,source\na,b,c', /3 cells, the header has 2/],
      [`{"id":"a","source":"${'x'.repeat(70000)}"}`, /a line of/],
    ];
    for (const [text, want] of bad) {
      const err = (() => {
        try {
          parseWorklist(text, 'l');
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, text.slice(0, 40)).toBeInstanceOf(FleetError);
      expect((err as FleetError).code).toBe('E_WORKLIST');
      expect((err as Error).message, text.slice(0, 40)).toMatch(want);
    }
  });

  it('fuzz: mutated work lists give a FleetError or items, never another exception', () => {
    const seed = '{"id":"ami-1","source":"a.img","targets":["kvm","xenserver"],"class":"pvgrub-hd0"}\nid,source,targets\n"q""x",b,kvm\n';
    const r = prng(1818);
    const alphabet = '{}[]",:\n\r\\ab01-_.;|' + '\u0000\u00ff\ufeff';
    for (let n = 0; n < 3000; n++) {
      const chars = [...seed];
      for (let k = r.int(1, 6); k > 0; k--) {
        const at = r.int(0, chars.length - 1);
        const op = r.int(0, 2);
        const c = alphabet[r.int(0, alphabet.length - 1)]!;
        if (op === 0) chars[at] = c;
        else if (op === 1) chars.splice(at, 0, c);
        else chars.splice(at, 1);
      }
      const text = r.next() < 0.5 ? chars.join('') : chars.join('').split('\n').slice(1).join('\n');
      try {
        const items = parseWorklist(text, 'fuzz');
        for (const i of items) expect(i.targets.length).toBeGreaterThan(0);
      } catch (err) {
        expect(err, text).toBeInstanceOf(FleetError);
      }
    }
  });
});

describe('the report', () => {
  it('groups reasons that differ only in versions and paths', () => {
    expect(reasonKind('only Xen-PV-only kernels (2.6.18-398.el5xen): they cannot boot on kvm')).toBe(reasonKind('only Xen-PV-only kernels (2.6.18-419.el5xen): they cannot boot on kvm'));
    expect(reasonKind('/a/b.img: cannot open')).toBe(reasonKind('/c/d.img: cannot open'));
  });

  it('never turns text from an image into markup', () => {
    const hostile = '<script>alert(1)</script>"\'&';
    const r: ImageResult = {
      id: 'ami-x', source: '/x', status: 'done', meta: { aki: hostile }, worker: 'w', started: '', seconds: 1, attempt: 1, stages: [],
      guest: { distro: 'x', release: hostile, arch: 'x86_64', layout: 'bare-filesystem', kernels: [{ version: hostile, xenOnly: false, isDefault: true }] },
      targets: [{ target: 'kvm', outcome: 'wont', tweaks: [], reasons: [hostile] }],
    };
    const html = renderReportHtml(buildReport([r], '/out'));
    expect(html).not.toContain('<script>alert');
    expect(html).toContain(esc(hostile));
    expect(html.match(/<script>/g)).toHaveLength(1);
  });
});
