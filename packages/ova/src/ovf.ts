import { ImageError } from '@amitrans/block';
import type { OvfOsType } from './ostype.js';
import { attr, child, childText, children, escapeXml, parseXml, type XmlElement } from './xml.js';

/** DSP0243 namespaces. OVF 2.0 changed only the envelope namespace; CIM's stayed. */
export const OVF_NAMESPACE = { '1.0': 'http://schemas.dmtf.org/ovf/envelope/1', '2.0': 'http://schemas.dmtf.org/ovf/envelope/2' } as const;
export const RASD_NAMESPACE = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData';
export const VSSD_NAMESPACE = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData';
export const VBOX_NAMESPACE = 'http://www.virtualbox.org/ovf/machine';
/** The disk format every exporter writes and VirtualBox and VMware accept. */
export const VMDK_STREAM_OPTIMIZED = 'http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized';

/** CIM ResourceType numbers used in VirtualHardwareSection items. */
export const RESOURCE_TYPE = {
  processor: 3,
  memory: 4,
  ideController: 5,
  scsiController: 6,
  ethernetAdapter: 10,
  cdDrive: 15,
  dvdDrive: 16,
  disk: 17,
  sataController: 20,
} as const;

export type OvfVersion = '1.0' | '2.0';
export type ControllerKind = 'ide' | 'sata';
export type NicKind = 'e1000' | 'pcnet32' | 'vmxnet3' | 'virtio';

/** rasd:ResourceSubType of each NIC model, as VirtualBox and VMware write it. */
export const NIC_SUBTYPE: Record<NicKind, string> = { e1000: 'E1000', pcnet32: 'PCNet32', vmxnet3: 'VmxNet3', virtio: 'virtio' };
/** VirtualBox's adapter type names for the vbox:Machine section. */
const VBOX_NIC: Record<NicKind, string> = { e1000: '82540EM', pcnet32: 'Am79C973', vmxnet3: '82540EM', virtio: 'virtio' };

export interface OvfDiskSpec {
  fileId: string;
  href: string;
  diskId: string;
  /** Virtual size in bytes. */
  capacity: number;
  format: string;
  /** VirtualBox medium UUID (links the disk to the vbox:Machine attachment). */
  vboxUuid?: string;
}

export interface OvfSpec {
  version: OvfVersion;
  name: string;
  os: OvfOsType;
  /** vssd:VirtualSystemType, e.g. vmx-10 (VMware rejects virtualbox-2.2). */
  systemType: string;
  cpus: number;
  memoryMiB: number;
  controller: ControllerKind;
  nic: NicKind;
  network: string;
  disks: OvfDiskSpec[];
  /** Add VirtualBox's own machine description (ovf:required="false"). */
  vboxMachine?: { uuid: string };
}

interface RasdItem {
  /** Item children in the schema's (alphabetical) order: CIM's XSD is a sequence. */
  fields: [string, string][];
}

function item(fields: Record<string, string | undefined>): RasdItem {
  return { fields: Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined).sort((a, b) => (a[0] < b[0] ? -1 : 1)) };
}

/** InstanceIDs of the hardware items: the disk's Parent is the controller's InstanceID. */
export const INSTANCE = { cpu: 1, memory: 2, controller: 3, nic: 4, firstDisk: 5 } as const;

function hardwareItems(spec: OvfSpec): RasdItem[] {
  const items: RasdItem[] = [
    item({
      AllocationUnits: 'hertz * 10^6',
      Caption: `${spec.cpus} virtual CPU${spec.cpus > 1 ? 's' : ''}`,
      Description: 'Number of virtual CPUs',
      ElementName: `${spec.cpus} virtual CPU${spec.cpus > 1 ? 's' : ''}`,
      InstanceID: String(INSTANCE.cpu),
      ResourceType: String(RESOURCE_TYPE.processor),
      VirtualQuantity: String(spec.cpus),
    }),
    item({
      AllocationUnits: 'byte * 2^20',
      Caption: `${spec.memoryMiB} MB of memory`,
      Description: 'Memory Size',
      ElementName: `${spec.memoryMiB} MB of memory`,
      InstanceID: String(INSTANCE.memory),
      ResourceType: String(RESOURCE_TYPE.memory),
      VirtualQuantity: String(spec.memoryMiB),
    }),
    spec.controller === 'sata'
      ? item({
          Address: '0',
          Caption: 'sataController0',
          Description: 'SATA Controller',
          ElementName: 'sataController0',
          InstanceID: String(INSTANCE.controller),
          ResourceSubType: 'AHCI',
          ResourceType: String(RESOURCE_TYPE.sataController),
        })
      : item({
          Address: '0',
          Caption: 'ideController0',
          Description: 'IDE Controller',
          ElementName: 'ideController0',
          InstanceID: String(INSTANCE.controller),
          ResourceSubType: 'PIIX4',
          ResourceType: String(RESOURCE_TYPE.ideController),
        }),
    item({
      AutomaticAllocation: 'true',
      Caption: `Ethernet adapter on '${spec.network}'`,
      Connection: spec.network,
      ElementName: `Ethernet adapter on '${spec.network}'`,
      InstanceID: String(INSTANCE.nic),
      ResourceSubType: NIC_SUBTYPE[spec.nic],
      ResourceType: String(RESOURCE_TYPE.ethernetAdapter),
    }),
  ];
  spec.disks.forEach((d, i) => {
    items.push(item({
      AddressOnParent: String(i),
      Caption: `disk${i + 1}`,
      Description: 'Disk Image',
      ElementName: `disk${i + 1}`,
      HostResource: `ovf:/disk/${d.diskId}`,
      InstanceID: String(INSTANCE.firstDisk + i),
      Parent: String(INSTANCE.controller),
      ResourceType: String(RESOURCE_TYPE.disk),
    }));
  });
  return items;
}

function vboxMachine(spec: OvfSpec, uuid: string): string[] {
  const controller = spec.controller === 'sata'
    ? '<StorageController name="SATA" type="AHCI" PortCount="1" useHostIOCache="false" Bootable="true">'
    : '<StorageController name="IDE" type="PIIX4" PortCount="2" useHostIOCache="true" Bootable="true">';
  const attach = spec.disks.map((d, i) => {
    const [port, device] = spec.controller === 'sata' ? [i, 0] : [Math.floor(i / 2), i % 2];
    return [
      `          <AttachedDevice type="HardDisk" hotpluggable="false" port="${port}" device="${device}">`,
      `            <Image uuid="{${d.vboxUuid}}"/>`,
      '          </AttachedDevice>',
    ];
  }).flat();
  return [
    `    <vbox:Machine ovf:required="false" version="1.16-linux" uuid="{${uuid}}" name="${escapeXml(spec.name)}" OSType="${spec.os.vbox}">`,
    '      <ovf:Info>Complete VirtualBox machine configuration in VirtualBox format</ovf:Info>',
    '      <MediaRegistry>',
    '        <HardDisks>',
    ...spec.disks.map((d) => `          <HardDisk uuid="{${d.vboxUuid}}" location="${escapeXml(d.href)}" format="VMDK" type="Normal"/>`),
    '        </HardDisks>',
    '      </MediaRegistry>',
    '      <Hardware>',
    `        <CPU count="${spec.cpus}"/>`,
    `        <Memory RAMSize="${spec.memoryMiB}"/>`,
    '        <Boot>',
    '          <Order position="1" device="HardDisk"/>',
    '        </Boot>',
    '        <Network>',
    `          <Adapter slot="0" enabled="true" cable="true" type="${VBOX_NIC[spec.nic]}">`,
    '            <NAT/>',
    '          </Adapter>',
    '        </Network>',
    '      </Hardware>',
    '      <StorageControllers>',
    `        ${controller}`,
    ...attach,
    '        </StorageController>',
    '      </StorageControllers>',
    '    </vbox:Machine>',
  ];
}

/**
 * The OVF descriptor: References, DiskSection (capacity in bytes), NetworkSection, and one
 * VirtualSystem with its OperatingSystemSection and VirtualHardwareSection (CPUs, memory,
 * one controller, the disks attached to it through Parent, one NIC). Vendor extras carry
 * ovf:required="false" so a reader that does not know them may skip them.
 */
export function serializeOvf(spec: OvfSpec): string {
  const ns = OVF_NAMESPACE[spec.version];
  const e = escapeXml;
  const lines: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<Envelope ovf:version="${spec.version}" xml:lang="en-US" xmlns="${ns}" xmlns:ovf="${ns}" xmlns:rasd="${RASD_NAMESPACE}" xmlns:vssd="${VSSD_NAMESPACE}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:vbox="${VBOX_NAMESPACE}">`,
    '  <References>',
    ...spec.disks.map((d) => `    <File ovf:id="${e(d.fileId)}" ovf:href="${e(d.href)}"/>`),
    '  </References>',
    '  <DiskSection>',
    '    <Info>List of the virtual disks used in the package</Info>',
    ...spec.disks.map((d) =>
      `    <Disk ovf:capacity="${d.capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="${e(d.diskId)}" ovf:fileRef="${e(d.fileId)}" ovf:format="${e(d.format)}"${d.vboxUuid && spec.vboxMachine ? ` vbox:uuid="${d.vboxUuid}"` : ''}/>`),
    '  </DiskSection>',
    '  <NetworkSection>',
    '    <Info>Logical networks used in the package</Info>',
    `    <Network ovf:name="${e(spec.network)}">`,
    '      <Description>Logical network used by this appliance.</Description>',
    '    </Network>',
    '  </NetworkSection>',
    `  <VirtualSystem ovf:id="${e(spec.name)}">`,
    '    <Info>A virtual machine</Info>',
    `    <Name>${e(spec.name)}</Name>`,
    `    <OperatingSystemSection ovf:id="${spec.os.id}">`,
    '      <Info>The kind of installed guest operating system</Info>',
    `      <Description>${e(spec.os.description)}</Description>`,
    `      <vbox:OSType ovf:required="false">${e(spec.os.vbox)}</vbox:OSType>`,
    '    </OperatingSystemSection>',
    '    <VirtualHardwareSection>',
    '      <Info>Virtual hardware requirements for a virtual machine</Info>',
    '      <System>',
    '        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>',
    '        <vssd:InstanceID>0</vssd:InstanceID>',
    `        <vssd:VirtualSystemIdentifier>${e(spec.name)}</vssd:VirtualSystemIdentifier>`,
    `        <vssd:VirtualSystemType>${e(spec.systemType)}</vssd:VirtualSystemType>`,
    '      </System>',
  ];
  for (const it of hardwareItems(spec)) {
    lines.push('      <Item>');
    for (const [k, v] of it.fields) lines.push(`        <rasd:${k}>${e(v)}</rasd:${k}>`);
    lines.push('      </Item>');
  }
  lines.push('    </VirtualHardwareSection>');
  if (spec.vboxMachine) lines.push(...vboxMachine(spec, spec.vboxMachine.uuid));
  lines.push('  </VirtualSystem>', '</Envelope>', '');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------
// Reading

export interface OvfFile {
  id: string;
  href: string;
  size?: number;
  compression?: string;
  chunkSize?: number;
}

export interface OvfDisk {
  diskId: string;
  fileRef?: string;
  /** Virtual size in bytes (capacity times its allocation units). */
  capacity: number;
  format?: string;
}

export interface OvfItem {
  instanceId: string;
  resourceType: number;
  resourceSubType?: string;
  parent?: string;
  addressOnParent?: string;
  hostResource: string[];
  elementName?: string;
  virtualQuantity?: string;
  allocationUnits?: string;
  connection?: string;
}

export interface OvfVirtualSystem {
  id: string;
  name?: string;
  os?: { id: number; description?: string };
  systemType?: string;
  items: OvfItem[];
}

export interface OvfDescriptor {
  version: string;
  files: OvfFile[];
  disks: OvfDisk[];
  networks: string[];
  systems: OvfVirtualSystem[];
}

/** The largest OVF descriptor read (real ones are a few KiB; VirtualBox's with a vbox:Machine tens). */
export const MAX_OVF_BYTES = 16 * 1024 * 1024;
const STRUCT = 'OVF descriptor';

/** Bytes per allocation unit: "byte", "byte * 2^20", "byte * 10^6", and the word forms older tools write. */
export function allocationUnitBytes(units: string | undefined, at = 0): number {
  if (units === undefined || units.trim() === '') return 1;
  const u = units.trim();
  const words: Record<string, number> = { byte: 1, bytes: 1, kilobytes: 2 ** 10, megabytes: 2 ** 20, gigabytes: 2 ** 30, terabytes: 2 ** 40 };
  const word = words[u.toLowerCase()];
  if (word !== undefined) return word;
  const m = /^byte\s*\*\s*(2|10)\s*\^\s*(\d{1,2})$/i.exec(u);
  if (m) {
    const v = Number(m[1]) ** Number(m[2]);
    if (Number.isSafeInteger(v)) return v;
  }
  throw new ImageError('E_UNSUPPORTED', `allocation units "${units}"`, { structure: STRUCT, offset: at });
}

function int(text: string | undefined, what: string, at: number): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t))) throw new ImageError('E_CORRUPT', `${what} "${t.slice(0, 40)}" is not a whole number`, { structure: STRUCT, offset: at });
  return Number(t);
}

function readItem(el: XmlElement): OvfItem {
  const instanceId = childText(el, 'InstanceID') ?? childText(el, 'InstanceId') ?? '';
  const resourceType = int(childText(el, 'ResourceType'), 'ResourceType', el.at) ?? 0;
  const out: OvfItem = { instanceId, resourceType, hostResource: children(el, 'HostResource').map((h) => h.text.trim()) };
  const opt = (k: keyof OvfItem, local: string): void => {
    const v = childText(el, local);
    if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  };
  opt('resourceSubType', 'ResourceSubType');
  opt('parent', 'Parent');
  opt('addressOnParent', 'AddressOnParent');
  opt('elementName', 'ElementName');
  opt('virtualQuantity', 'VirtualQuantity');
  opt('allocationUnits', 'AllocationUnits');
  opt('connection', 'Connection');
  return out;
}

/** All descendants with a local name, depth first (sections may sit in a VirtualSystemCollection). */
function descendants(el: XmlElement, local: string, out: XmlElement[] = []): XmlElement[] {
  for (const c of el.children) {
    if (c.local === local) out.push(c);
    else descendants(c, local, out);
  }
  return out;
}

/**
 * Parse an OVF descriptor. Elements and attributes are matched by local name, so
 * `ovf:Disk`, `Disk` and `ns1:Disk` all read the same (producers disagree on prefixes).
 */
export function parseOvf(bytes: Uint8Array): OvfDescriptor {
  if (bytes.length > MAX_OVF_BYTES) throw new ImageError('E_TOO_LARGE', `a ${bytes.length}-byte OVF descriptor is larger than ${MAX_OVF_BYTES}`, { structure: STRUCT });
  const text = Buffer.from(bytes).toString('utf8');
  const root = parseXml(text);
  if (root.local !== 'Envelope') throw new ImageError('E_BAD_MAGIC', `root element is <${root.name}>, not an OVF Envelope`, { structure: STRUCT, offset: root.at });
  const version = attr(root, 'version') ?? (root.attributes.get('xmlns') === OVF_NAMESPACE['2.0'] ? '2.0' : '1.0');
  const files: OvfFile[] = [];
  for (const f of children(child(root, 'References') ?? root, 'File')) {
    const id = attr(f, 'id');
    const href = attr(f, 'href');
    if (!id || !href) throw new ImageError('E_CORRUPT', 'a References/File without ovf:id or ovf:href', { structure: STRUCT, offset: f.at });
    const file: OvfFile = { id, href };
    const size = int(attr(f, 'size'), 'File size', f.at);
    if (size !== undefined) file.size = size;
    const compression = attr(f, 'compression');
    if (compression !== undefined && compression !== 'identity') file.compression = compression;
    const chunk = int(attr(f, 'chunkSize'), 'File chunkSize', f.at);
    if (chunk !== undefined) file.chunkSize = chunk;
    files.push(file);
  }
  const disks: OvfDisk[] = [];
  for (const section of descendants(root, 'DiskSection')) {
    for (const d of children(section, 'Disk')) {
      const diskId = attr(d, 'diskId');
      if (!diskId) throw new ImageError('E_CORRUPT', 'a Disk without ovf:diskId', { structure: STRUCT, offset: d.at });
      const rawCapacity = attr(d, 'capacity') ?? '';
      if (/^\$\{/.test(rawCapacity.trim())) throw new ImageError('E_UNSUPPORTED', `disk ${diskId} capacity is a property reference (${rawCapacity})`, { structure: STRUCT, offset: d.at });
      const capacity = (int(rawCapacity, `disk ${diskId} capacity`, d.at) ?? 0) * allocationUnitBytes(attr(d, 'capacityAllocationUnits'), d.at);
      if (!Number.isSafeInteger(capacity)) throw new ImageError('E_TOO_LARGE', `disk ${diskId} capacity is beyond 2^53 bytes`, { structure: STRUCT, offset: d.at });
      const disk: OvfDisk = { diskId, capacity };
      const fileRef = attr(d, 'fileRef');
      if (fileRef !== undefined) disk.fileRef = fileRef;
      const format = attr(d, 'format');
      if (format !== undefined) disk.format = format;
      disks.push(disk);
    }
  }
  const networks = descendants(root, 'NetworkSection').flatMap((s) => children(s, 'Network').map((n) => attr(n, 'name') ?? ''));
  const systems: OvfVirtualSystem[] = descendants(root, 'VirtualSystem').map((vs) => {
    const sys: OvfVirtualSystem = { id: attr(vs, 'id') ?? '', items: [] };
    const name = childText(vs, 'Name');
    if (name !== undefined) sys.name = name;
    const os = child(vs, 'OperatingSystemSection');
    if (os) {
      const id = int(attr(os, 'id'), 'OperatingSystemSection id', os.at) ?? 0;
      const description = childText(os, 'Description');
      sys.os = description === undefined ? { id } : { id, description };
    }
    const hw = children(vs, 'VirtualHardwareSection')[0];
    if (hw) {
      const system = child(hw, 'System');
      const type = system ? childText(system, 'VirtualSystemType') : undefined;
      if (type !== undefined) sys.systemType = type;
      for (const el of hw.children) {
        if (el.local === 'Item' || el.local === 'StorageItem' || el.local === 'EthernetPortItem') sys.items.push(readItem(el));
      }
    }
    return sys;
  });
  return { version, files, disks, networks, systems };
}

/**
 * The disks in the order the first virtual system attaches them (so the boot disk comes
 * first), then any the hardware does not mention.
 */
export function disksInOrder(ovf: OvfDescriptor): OvfDisk[] {
  const ordered: OvfDisk[] = [];
  const byId = new Map(ovf.disks.map((d) => [d.diskId, d]));
  for (const it of ovf.systems[0]?.items ?? []) {
    if (it.resourceType !== RESOURCE_TYPE.disk) continue;
    for (const h of it.hostResource) {
      const id = /^(?:ovf:)?\/?disk\/(.+)$/.exec(h)?.[1];
      const d = id === undefined ? undefined : byId.get(id);
      if (d && !ordered.includes(d)) ordered.push(d);
    }
  }
  for (const d of ovf.disks) if (!ordered.includes(d)) ordered.push(d);
  return ordered;
}

/** The hardware an appliance asks for, as a hypervisor reads it: the first disk's controller and the first NIC's model. */
export function applianceHardware(ovf: OvfDescriptor): { controller?: 'ide' | 'sata' | 'scsi'; nic?: string } {
  const items = ovf.systems[0]?.items ?? [];
  const out: { controller?: 'ide' | 'sata' | 'scsi'; nic?: string } = {};
  const disk = items.find((it) => it.resourceType === RESOURCE_TYPE.disk);
  const parent = disk && items.find((it) => it.instanceId === disk.parent);
  const kinds: Record<number, 'ide' | 'sata' | 'scsi'> = {
    [RESOURCE_TYPE.ideController]: 'ide',
    [RESOURCE_TYPE.sataController]: 'sata',
    [RESOURCE_TYPE.scsiController]: 'scsi',
  };
  const controller = parent ? kinds[parent.resourceType] : undefined;
  if (controller) out.controller = controller;
  const nic = items.find((it) => it.resourceType === RESOURCE_TYPE.ethernetAdapter)?.resourceSubType;
  if (nic) out.nic = nic;
  return out;
}
