import { createServer, connect } from 'node:net';

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released for QEMU to take). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no free port on 127.0.0.1'))));
    });
  });
}

const BANNER_BYTES = 255; // RFC 4253 4.2: the identification line is at most 255 bytes

/**
 * Connect once and read the server's identification line. QEMU's user network accepts the
 * connection itself and closes it when nothing listens in the guest, so an early attempt
 * ends with no banner; the caller tries again.
 */
export function readSshBanner(port: number, timeoutMs = 10_000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (banner: string | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(banner);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      const line = /^(SSH-2\.0-[^\r\n]*)\r?\n/m.exec(data);
      if (line) done(line[1]);
      else if (data.length > BANNER_BYTES * 4) done(undefined);
    });
    socket.on('error', () => done(undefined));
    socket.on('close', () => done(undefined));
  });
}
