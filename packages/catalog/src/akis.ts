/**
 * The public pv-grub AKIs: an image whose kernel is one of these boots the kernel named in
 * its own /boot/grub/menu.lst, so it can boot elsewhere. Facts from ../shared/specs/guest.md
 * §5.2 and fleet.md §1; each group names its source.
 */

export type PvGrubDisk = 'hd0' | 'hd00';
export type Arch = 'i386' | 'x86_64';

export interface PvGrubAki {
  readonly id: string;
  /** 1.01 ... 1.05; Red Hat's own builds are 'RH-1.01'. */
  readonly version: string;
  /** hd0: a partition-less filesystem; hd00: partition 1 of a disk. */
  readonly disk: PvGrubDisk;
  readonly arch: Arch;
  readonly region: string;
  readonly source: string;
}

const AWS_105 = 'awsdocs UserProvidedKernels.md (PV-GRUB 1.05)';
const BOOTSTRAP_VZ = 'andsens/bootstrap-vz providers/ec2/tasks/ami.py, citing the AWS table (PV-GRUB 1.04)';
const OTHER_104 = 'unik, BOSH light-stemcell-builder ("pv-grub-hd0_1.04-x86_64")';
const CLOUDYSCRIPTS = 'ably-forks/cloudyscripts lib/help/state_transition_helper.rb; lwade/euca-wiki Automated-Translation-from-AMI-to-EMI.md';
const REGIONS_OLD = 'cloudyscripts state_transition_helper.rb, RightScale "EC2 register S3 AMI", turnkeylinux/buildtasks conf.py';
const JP_103 = 'AWS blog copy listing the ap-northeast-1 PV-GRUB 1.03 AKIs';

/** Rows as `region: [hd0 i386, hd0 x86_64, hd00 i386, hd00 x86_64]`; '' where none exists. */
type Quad = readonly [string, string, string, string];

function rows(version: string, source: string, table: Record<string, Quad>): PvGrubAki[] {
  const out: PvGrubAki[] = [];
  for (const [region, ids] of Object.entries(table)) {
    const slots: [PvGrubDisk, Arch][] = [['hd0', 'i386'], ['hd0', 'x86_64'], ['hd00', 'i386'], ['hd00', 'x86_64']];
    ids.forEach((id, i) => {
      if (id) out.push({ id: id.startsWith('aki-') ? id : `aki-${id}`, version, disk: slots[i]![0], arch: slots[i]![1], region, source });
    });
  }
  return out;
}

export const PV_GRUB_AKIS: readonly PvGrubAki[] = [
  ...rows('1.05', AWS_105, {
    'ap-northeast-1': ['f975a998', '7077ab11', '', ''],
    'ap-southeast-1': ['17a40074', '73a50110', '', ''],
    'ap-southeast-2': ['ba5665d9', '66506305', '', ''],
    'eu-central-1': ['1419e57b', '931fe3fc', '', ''],
    'eu-west-1': ['1c9fd86f', 'dc9ed9af', '', ''],
    'sa-east-1': ['7cd34110', '912fbcfd', '', ''],
    'us-east-1': ['04206613', '5c21674b', '', ''],
    'us-gov-west-1': ['5ee9573f', '9ee55bff', '', ''],
    'us-west-1': ['43cf8123', '59cc8239', '', ''],
    'us-west-2': ['7a69931a', '70cb0e10', '', ''],
  }),
  ...rows('1.04', BOOTSTRAP_VZ, {
    'ap-northeast-1': ['136bf512', '176bf516', '196bf518', '1f6bf51e'],
    'ap-southeast-1': ['ae3973fc', '503e7402', '563e7404', '5e3e740c'],
    'ap-southeast-2': ['cd62fff7', 'c362fff9', 'c162fffb', '3b1d8001'],
    'eu-west-1': ['68a3451f', '52a34525', '5ea34529', '58a3452f'],
    'sa-east-1': ['5b53f446', '5553f448', '5753f44a', '5153f44c'],
    'us-east-1': ['8f9dcae6', '919dcaf8', '659ccb0c', '499ccb20'],
    'us-gov-west-1': ['1fe98d3c', '1de98d3e', '63e98d40', '61e98d42'],
    'us-west-1': ['8e0531cb', '880531cd', '960531d3', '920531d7'],
    'us-west-2': ['f08f11c0', 'fc8f11cc', 'e28f11d2', 'e68f11d6'],
    'eu-central-1': ['3e4c7a23', '184c7a05', '', ''],
  }),
  ...rows('1.04', OTHER_104, {
    'us-east-2': ['', 'da055ebf', '', ''],
    'eu-west-2': ['', '8b6369ef', '', ''],
    'ap-south-1': ['', 'a7305ac8', '', ''],
    'ap-northeast-2': ['', '01a66b6f', '', ''],
    'ca-central-1': ['', '320ebd56', '', ''],
  }),
  // us-east-1, 1.01-1.03: the notes' twelve AKIs (their AMI counts are the notes' table).
  ...rows('1.01', CLOUDYSCRIPTS, { 'us-east-1': ['407d9529', '427d952b', '4c7d9525', '4e7d9527'] }),
  ...rows('1.02', CLOUDYSCRIPTS, { 'us-east-1': ['805ea7e9', '825ea7eb', '525ea73b', '8e5ea7e7'] }),
  ...rows('1.03', CLOUDYSCRIPTS, { 'us-east-1': ['b6aa75df', '88aa75e1', 'b2aa75db', 'b4aa75dd'] }),
  ...rows('1.01', REGIONS_OLD, {
    'us-west-1': ['99a0f1dc', '9ba0f1de', '9da0f1d8', '9fa0f1da'],
    'us-west-2': ['dce26fec', 'ace26f9c', 'dee26fee', '90e26fa0'],
    'eu-west-1': ['4deec439', '4feec43b', '47eec433', '41eec435'],
    'ap-southeast-1': ['13d5aa41', '11d5aa43', '6fd5aa3d', '6dd5aa3f'],
    // fleet.md §1.2 note 2: the cloudyscripts comment (d209/d409 are hd0) is taken as right.
    'ap-northeast-1': ['d209a2d3', 'd409a2d5', 'd609a2d7', 'd809a2d9'],
    'sa-east-1': ['863ce39b', 'd63ce3cb', '803ce39d', 'd03ce3cd'],
  }),
  ...rows('1.02', REGIONS_OLD, {
    'us-west-1': ['83396bc6', '8d396bc8', '87396bc2', '81396bc4'],
    'us-west-2': ['c2e26ff2', '98e26fa8', 'c0e26ff0', '94e26fa4'],
    'eu-west-1': ['64695810', '62695816', '8a6657fe', '60695814'],
    'ap-southeast-1': ['a4225af6', 'aa225af8', 'a0225af2', 'a6225af4'],
    'ap-northeast-1': ['ec5df7ed', 'ee5df7ef', 'e85df7e9', 'ea5df7eb'],
    // fleet.md §1.2 note 3: RightScale and the seed's region table say hd0.
    'sa-east-1': ['bc3ce3a1', 'cc3ce3d1', '823ce39f', 'd23ce3cf'],
  }),
  ...rows('1.03', REGIONS_OLD, {
    'us-west-1': ['f57e26b0', 'f77e26b2', 'e97e26ac', 'eb7e26ae'],
    'us-west-2': ['fa37baca', 'fc37bacc', 'f637bac6', 'f837bac8'],
    'eu-west-1': ['75665e01', '71665e05', '89655dfd', '8b655dff'],
    'ap-southeast-1': ['f81354aa', 'fe1354ac', 'f41354a6', 'fa1354a8'],
    'sa-east-1': ['ca8f51d7', 'c48f51d9', 'ce8f51d3', 'c88f51d5'],
    'ap-southeast-2': ['33990e09', '31990e0b', '3f990e05', '3d990e07'],
    'us-gov-west-1': ['', '', '77a4c054', '75a4c056'],
  }),
  ...rows('1.03', JP_103, { 'ap-northeast-1': ['42992843', '44992845', '3e99283f', '40992841'] }),
  // Red Hat's own "RH-pv-grub-hd0-V1.01": also a kernel inside the image.
  ...rows('RH-1.01', 'cloudyscripts state_transition_helper.rb (RH-pv-grub-hd0-V1.01)', { 'us-east-1': ['36ed075f', '08ed0761', '', ''] }),
];

/**
 * What a kernel image's name or location says: `pv-grub-hd0-V1.01-x86_64.gz`,
 * `pv-grub-hd00_1.03-i386.gz.manifest.xml`, `amazon/pv-grub-hd0_1.05-x86_64.gz`,
 * `RH-pv-grub-hd0-V1.01-i386.gz` (fleet.md §1.1: hd00? then - or _, an optional V).
 */
export function pvGrubFromName(name: string): { version: string; disk: PvGrubDisk; arch: Arch } | undefined {
  const m = /(?:^|[/])(RH-)?pv-grub-(hd00?)[-_]V?(\d+\.\d+)-(i386|x86_64)\.gz(?:\.manifest\.xml)?$/i.exec(name);
  if (!m) return undefined;
  return { version: `${m[1] ? 'RH-' : ''}${m[3]}`, disk: m[2]!.toLowerCase() as PvGrubDisk, arch: m[4] as Arch };
}

/** The table as a map, with AKIs learned from a kernels listing added (they win: they were read). */
export class AkiTable {
  readonly #byId = new Map<string, PvGrubAki>();

  constructor(rows: readonly PvGrubAki[] = PV_GRUB_AKIS) {
    for (const r of rows) this.#byId.set(r.id, r);
  }

  get(id: string): PvGrubAki | undefined {
    return this.#byId.get(id);
  }

  add(row: PvGrubAki): void {
    this.#byId.set(row.id, row);
  }

  get size(): number {
    return this.#byId.size;
  }
}
