import { access, chmod, constants } from 'node:fs/promises';
import sevenBin from '7zip-bin';
import { ImageError } from '@amitrans/block';

/**
 * The standalone 7-Zip binary of the `7zip-bin` npm package, which runs bzip2, xz and lzma
 * over pipes (-si/-so), multi-threaded. (node-7z parses 7-Zip's text output line by line,
 * so it cannot carry binary data through stdout; the same binary is driven directly.)
 */
export async function sevenZipPath(): Promise<string> {
  const bin = sevenBin.path7za;
  try {
    await access(bin, constants.X_OK);
  } catch {
    // npm does not always keep the execute bit of the packaged binary.
    await chmod(bin, 0o755).catch(() => {
      throw new ImageError('E_IO', `7-Zip binary ${bin} is not executable; run: chmod +x ${bin}`);
    });
  }
  return bin;
}
