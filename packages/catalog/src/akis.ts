/**
 * Every public pv-grub AKI the sources name. A pv-grub AKI means the kernel lives inside the
 * image (menu.lst picks it), so the image can boot elsewhere; any other AKI means the kernel
 * lives outside it. Facts: specs/guest.md §5.2 and specs/fleet.md §1; each row says where it
 * comes from.
 */
export type PvGrubDisk = 'hd0' | 'hd00';
export type Arch = 'i386' | 'x86_64';

export interface PvGrubAki {
  aki: string;
  region: string;
  /** pv-grub release, "1.01" to "1.05". */
  version: string;
  /** hd0: menu.lst on a partition-less disk; hd00: on partition 1. */
  disk: PvGrubDisk;
  arch: Arch;
  /** Red Hat's own pv-grub build ("RH-pv-grub-hd0-V1.01") rather than Amazon's. */
  vendor: 'amazon' | 'redhat';
  source: string;
}

const AWS_105 = 'awsdocs UserProvidedKernels.md (pv-grub 1.05 table)';
const BOOTSTRAP_VZ = 'andsens/bootstrap-vz:providers/ec2/tasks/ami.py (AWS 1.04 table)';
const NEW_REGIONS_104 = 'unik, BOSH light-stemcell-builder ("pv-grub-hd0_1.04-x86_64")';
const JP_BLOG_103 = 'AWS Japan blog copy of the 1.03 table (guest.md §5.2)';
const SEED_US_EAST = 'lwade/euca-wiki Automated-Translation-from-AMI-to-EMI.md + ably-forks/cloudyscripts state_transition_helper.rb@c1f1977';
const REGIONS_101_103 = 'ably-forks/cloudyscripts state_transition_helper.rb@c1f1977, RightScale "EC2 register S3 AMI", turnkeylinux/buildtasks bin/ec2/conf.py';
const CLOUDYSCRIPTS_RH = 'ably-forks/cloudyscripts state_transition_helper.rb@c1f1977 (RH-pv-grub-hd0-V1.01)';

/** One region's four AKIs: hd0 i386, hd0 x86_64, hd00 i386, hd00 x86_64 ('' where none exists). */
type Quad = readonly [string, string, string, string];

function rows(version: string, source: string, table: Record<string, Quad>): PvGrubAki[] {
  const out: PvGrubAki[] = [];
  for (const [region, quad] of Object.entries(table)) {
    const shapes = [['hd0', 'i386'], ['hd0', 'x86_64'], ['hd00', 'i386'], ['hd00', 'x86_64']] as const;
    quad.forEach((id, i) => {
      if (id === '') return;
      const [disk, arch] = shapes[i]!;
      out.push({ aki: `aki-${id}`, region, version, disk, arch, vendor: 'amazon', source });
    });
  }
  return out;
}

const V105 = rows('1.05', AWS_105, {
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
});

const V104 = [
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
  }),
  ...rows('1.04', NEW_REGIONS_104, {
    'eu-central-1': ['3e4c7a23', '184c7a05', '', ''],
    'us-east-2': ['', 'da055ebf', '', ''],
    'eu-west-2': ['', '8b6369ef', '', ''],
    'ap-south-1': ['', 'a7305ac8', '', ''],
    'ap-northeast-2': ['', '01a66b6f', '', ''],
    'ca-central-1': ['', '320ebd56', '', ''],
  }),
];

// The notes' 12 us-east-1 AKIs (fleet.md §1.1), 1.01 to 1.03.
const US_EAST_1 = [
  ...rows('1.01', SEED_US_EAST, { 'us-east-1': ['407d9529', '427d952b', '4c7d9525', '4e7d9527'] }),
  ...rows('1.02', SEED_US_EAST, { 'us-east-1': ['805ea7e9', '825ea7eb', '525ea73b', '8e5ea7e7'] }),
  ...rows('1.03', SEED_US_EAST, { 'us-east-1': ['b6aa75df', '88aa75e1', 'b2aa75db', 'b4aa75dd'] }),
];

// fleet.md §1.2. ap-northeast-1 1.01: the cloudyscripts map swaps hd0 and hd00, its comment
// and every other tool do not; sa-east-1 1.02 hd0 likewise (footnotes ² and ³).
const V101 = rows('1.01', REGIONS_101_103, {
  'us-west-1': ['99a0f1dc', '9ba0f1de', '9da0f1d8', '9fa0f1da'],
  'us-west-2': ['dce26fec', 'ace26f9c', 'dee26fee', '90e26fa0'],
  'eu-west-1': ['4deec439', '4feec43b', '47eec433', '41eec435'],
  'ap-southeast-1': ['13d5aa41', '11d5aa43', '6fd5aa3d', '6dd5aa3f'],
  'ap-northeast-1': ['d209a2d3', 'd409a2d5', 'd609a2d7', 'd809a2d9'],
  'sa-east-1': ['863ce39b', 'd63ce3cb', '803ce39d', 'd03ce3cd'],
});
const V102 = rows('1.02', REGIONS_101_103, {
  'us-west-1': ['83396bc6', '8d396bc8', '87396bc2', '81396bc4'],
  'us-west-2': ['c2e26ff2', '98e26fa8', 'c0e26ff0', '94e26fa4'],
  'eu-west-1': ['64695810', '62695816', '8a6657fe', '60695814'],
  'ap-southeast-1': ['a4225af6', 'aa225af8', 'a0225af2', 'a6225af4'],
  'ap-northeast-1': ['ec5df7ed', 'ee5df7ef', 'e85df7e9', 'ea5df7eb'],
  'sa-east-1': ['bc3ce3a1', 'cc3ce3d1', '823ce39f', 'd23ce3cf'],
});
const V103 = [
  ...rows('1.03', REGIONS_101_103, {
    'us-west-1': ['f57e26b0', 'f77e26b2', 'e97e26ac', 'eb7e26ae'],
    'us-west-2': ['fa37baca', 'fc37bacc', 'f637bac6', 'f837bac8'],
    'eu-west-1': ['75665e01', '71665e05', '89655dfd', '8b655dff'],
    'ap-southeast-1': ['f81354aa', 'fe1354ac', 'f41354a6', 'fa1354a8'],
    'sa-east-1': ['ca8f51d7', 'c48f51d9', 'ce8f51d3', 'c88f51d5'],
    'ap-southeast-2': ['33990e09', '31990e0b', '3f990e05', '3d990e07'],
    // The hd0 pair of us-gov-west-1 is unknown to the sources.
    'us-gov-west-1': ['', '', '77a4c054', '75a4c056'],
  }),
  ...rows('1.03', JP_BLOG_103, { 'ap-northeast-1': ['42992843', '44992845', '3e99283f', '40992841'] }),
];

const REDHAT: PvGrubAki[] = [
  { aki: 'aki-36ed075f', region: 'us-east-1', version: '1.01', disk: 'hd0', arch: 'i386', vendor: 'redhat', source: CLOUDYSCRIPTS_RH },
  { aki: 'aki-08ed0761', region: 'us-east-1', version: '1.01', disk: 'hd0', arch: 'x86_64', vendor: 'redhat', source: CLOUDYSCRIPTS_RH },
];

/** The whole table, oldest release first. */
export const PV_GRUB_AKIS: readonly PvGrubAki[] = [...US_EAST_1, ...V101, ...V102, ...V103, ...V104, ...V105, ...REDHAT];

const BY_ID = new Map(PV_GRUB_AKIS.map((row) => [row.aki, row]));

export function lookupPvGrubAki(aki: string): PvGrubAki | undefined {
  return BY_ID.get(aki);
}

/**
 * pv-grub's own naming: `pv-grub-hd0-V1.01-x86_64.gz` (1.01, hyphen and V) and
 * `pv-grub-hd00_1.03-i386.gz` (1.02 on); as a location it carries a bucket and
 * `.manifest.xml`. BOSH's regex misses the 1.01 form (fleet.md §1.1), this one does not.
 */
const PV_GRUB_NAME = /pv-grub-(hd00?)[-_]V?(\d+\.\d+)-(i386|x86_64)\.gz/i;

export interface PvGrubName {
  version: string;
  disk: PvGrubDisk;
  arch: Arch;
  vendor: 'amazon' | 'redhat';
}

/** What a kernel image's name or location says about it, if it is a pv-grub. */
export function parsePvGrubName(name: string): PvGrubName | undefined {
  const m = PV_GRUB_NAME.exec(name);
  if (!m) return undefined;
  const vendor = /(^|\/)RH-pv-grub/i.test(name) ? 'redhat' : 'amazon';
  return { disk: m[1]!.toLowerCase() as PvGrubDisk, version: m[2]!, arch: m[3] as Arch, vendor };
}
