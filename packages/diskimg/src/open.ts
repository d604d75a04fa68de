import { basename, dirname, isAbsolute, join } from 'node:path';
import { FileDevice, ImageError, inFile, type BlockDevice } from '@amitrans/block';
import { detectDevice, readHeadTail, probeDrivers, type Detection } from './detect.js';

export interface OpenedImage {
  readonly file: string;
  readonly detection: Detection;
  /** The virtual disk, read-only. */
  readonly disk: BlockDevice;
  close(): Promise<void>;
}

/**
 * Open any image file read-only as its virtual disk. The file is never opened for writing;
 * edits go to a CowOverlay over `disk`.
 */
export async function openImage(path: string): Promise<OpenedImage> {
  const file = await FileDevice.open(path);
  const opened: BlockDevice[] = [file];
  const closeAll = async (): Promise<void> => {
    for (const d of opened.reverse()) await d.close().catch(() => undefined);
  };
  try {
    return await inFile(path, async () => {
      const detection = await detectDevice(file);
      let disk: BlockDevice = file;
      if (detection.format !== 'raw') {
        const { head, tail } = await readHeadTail(file);
        const probed = probeDrivers({ head, tail, size: file.size });
        if (!probed?.driver.open) {
          throw new ImageError('E_UNSUPPORTED', `${describe(detection)} images cannot be read yet`, { structure: detection.format });
        }
        disk = await probed.driver.open(file, {
          file: path,
          openRelated: async (name: string) => {
            const related = await FileDevice.open(isAbsolute(name) ? name : join(dirname(path), name));
            opened.push(related);
            return related;
          },
        });
        opened.push(disk);
      }
      return { file: path, detection, disk, close: closeAll };
    });
  } catch (err) {
    await closeAll();
    throw err;
  }
}

export function describe(d: Detection): string {
  return d.subformat ? `${d.format} (${d.subformat})` : d.format;
}

export function displayName(path: string): string {
  return basename(path);
}
