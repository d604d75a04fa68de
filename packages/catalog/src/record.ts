/** One image as describe-images reports it, whichever form it came in. */
export interface ImageRecord {
  id: string;
  /** imageLocation (instance-store: `bucket/prefix.manifest.xml`) or `owner/name` (EBS). */
  location: string;
  /** The name of an EBS image or a JSON listing's Name; '' when the listing has none. */
  name: string;
  /** Owner alias (amazon, self...) or account id, as the text form prints it. */
  owner: string;
  /** The account id, when the listing gives it apart from the alias (JSON). */
  ownerId: string;
  state: string;
  /** undefined when the listing does not say. */
  public: boolean | undefined;
  arch: string;
  /** machine, kernel or ramdisk. */
  imageType: string;
  kernelId: string;
  ramdiskId: string;
  platform: string;
  /** instance-store or ebs; '' when unknown. */
  rootDeviceType: string;
  virtualizationType: string;
  hypervisor: string;
  /** The root volume's snapshot (EBS images). */
  snapshotId: string;
  tags: Record<string, string>;
  /** Where the record started: file name (or '-') and 1-based line. */
  source: string;
  line: number;
}

/** A line (or JSON value) that was skipped, and why. */
export interface ListingWarning {
  source: string;
  line: number;
  message: string;
}

export type WarningSink = (warning: ListingWarning) => void;

/** Shared by every record without tags (most of them): one object less per image. Replaced, never written. */
export const NO_TAGS: Readonly<Record<string, string>> = Object.freeze({});

export function emptyRecord(source: string, line: number): ImageRecord {
  return {
    id: '', location: '', name: '', owner: '', ownerId: '', state: '', public: undefined, arch: '', imageType: '',
    kernelId: '', ramdiskId: '', platform: '', rootDeviceType: '', virtualizationType: '', hypervisor: '',
    snapshotId: '', tags: NO_TAGS as Record<string, string>, source, line,
  };
}

/**
 * Instance-store images are registered from an S3 manifest; the text form of old tools
 * (and the notes' example line) stops before the root device type, so the location is
 * what tells.
 */
export function inferRootDeviceType(record: ImageRecord): string {
  if (record.rootDeviceType !== '') return record.rootDeviceType;
  if (record.location.endsWith('.manifest.xml')) return 'instance-store';
  if (record.snapshotId !== '') return 'ebs';
  return '';
}
