/** One image of a describe-images listing, whichever form it came in. */
export interface ImageRecord {
  id: string;
  /** imageLocation (instance-store: bucket/prefix.manifest.xml) or name (EBS: owner/name). */
  location: string;
  owner: string;
  ownerAlias?: string;
  state: string;
  public?: boolean;
  productCodes: string[];
  arch: string;
  /** machine, kernel or ramdisk. */
  imageType: string;
  kernelId: string;
  ramdiskId: string;
  platform: string;
  /** instance-store or ebs ('' when the listing does not say and the location does not tell). */
  rootDeviceType: string;
  rootDeviceName: string;
  virtualizationType: string;
  hypervisor: string;
  /** The root volume's EBS snapshot, when the listing maps one. */
  snapshot?: string;
  name?: string;
  tags: Record<string, string>;
  /** Where it was read: file (or '-') and line. */
  file: string;
  line: number;
}

export function emptyImage(id: string, file: string, line: number): ImageRecord {
  return {
    id, location: '', owner: '', state: '', productCodes: [], arch: '', imageType: '', kernelId: '', ramdiskId: '',
    platform: '', rootDeviceType: '', rootDeviceName: '', virtualizationType: '', hypervisor: '', tags: {}, file, line,
  };
}

/** A warning about the listing: the file, the line and what was wrong with it. */
export interface ListingWarning {
  file: string;
  line: number;
  message: string;
}

export type Warn = (w: ListingWarning) => void;

/** Image ids of every kind EC2 and Eucalyptus print (ami/aki/ari and emi/eki/eri). */
export const IMAGE_ID = /^[ae][mkr]i-[0-9a-f]{8}(?:[0-9a-f]{9})?$/;
