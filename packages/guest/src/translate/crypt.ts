import { createHash, randomBytes } from 'node:crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ROUNDS_DEFAULT = 5000;

function sha512(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** `n` bytes of `block` repeated (the "P-bytes"/"S-bytes" sequences of the spec). */
function repeatTo(block: Uint8Array, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += block.length) out.set(block.subarray(0, Math.min(block.length, n - i)), i);
  return out;
}

/** A random 16-character salt from the crypt alphabet. */
export function randomSalt(): string {
  return [...randomBytes(16)].map((b) => ITOA64[b & 63]).join('');
}

/**
 * glibc's SHA-512 crypt ("$6$"), as Ulrich Drepper's specification describes it, for
 * /etc/shadow. Same output as `openssl passwd -6 -salt SALT PASSWORD`.
 */
export function sha512Crypt(password: string, salt: string, rounds = ROUNDS_DEFAULT): string {
  const P = Buffer.from(password, 'utf8');
  const S = Buffer.from(salt.slice(0, 16), 'utf8');
  const B = sha512(P, S, P);
  const a = createHash('sha512');
  a.update(P);
  a.update(S);
  a.update(repeatTo(B, P.length));
  for (let n = P.length; n > 0; n >>= 1) a.update(n & 1 ? B : P);
  const A = a.digest();
  const DP = sha512(...Array.from({ length: P.length }, () => P));
  const Pbytes = repeatTo(DP, P.length);
  const DS = sha512(...Array.from({ length: 16 + A[0]! }, () => S));
  const Sbytes = repeatTo(DS, S.length);
  let C = A;
  for (let i = 0; i < rounds; i++) {
    const h = createHash('sha512');
    h.update(i & 1 ? Pbytes : C);
    if (i % 3) h.update(Sbytes);
    if (i % 7) h.update(Pbytes);
    h.update(i & 1 ? C : Pbytes);
    C = h.digest();
  }
  let out = '';
  const put = (b2: number, b1: number, b0: number, n: number): void => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let k = 0; k < n; k++) {
      out += ITOA64[w & 0x3f];
      w >>= 6;
    }
  };
  for (let i = 0; i < 21; i++) {
    const t = [C[i]!, C[i + 21]!, C[i + 42]!];
    const r = i % 3;
    put(t[r % 3]!, t[(1 + r) % 3]!, t[(2 + r) % 3]!, 4);
  }
  put(0, 0, C[63]!, 2);
  const prefix = rounds === ROUNDS_DEFAULT ? '$6$' : `$6$rounds=${rounds}$`;
  return `${prefix}${S.toString('utf8')}$${out}`;
}
