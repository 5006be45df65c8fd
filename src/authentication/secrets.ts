// SPDX-License-Identifier: Apache-2.0
/**
 * Credential secrets: generation, scrypt hashing and verification (node:crypto, no dependency).
 *
 * A hash is stored as one self-describing string, `scrypt$N$r$p$<salt base64url>$<key base64url>`,
 * so the cost parameters travel with it: a hash made today still verifies after the defaults are
 * raised, and declared configuration can carry hashes computed elsewhere
 * (`tributary admin credential hash`).
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

/** scrypt cost parameters (RFC 7914). */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** The parameters used for new hashes: N=2^14, r=8, p=1 (16 MiB, tens of ms per hash). */
export const SCRYPT_DEFAULTS: Readonly<ScryptParams> = Object.freeze({ N: 16384, r: 8, p: 1 });
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Secrets are 32 random bytes: 43 base64url characters, none of them an HL7 delimiter or ':'. */
const SECRET_BYTES = 32;

/** A decoded hash string. */
export interface SecretHash extends ScryptParams {
  salt: Buffer;
  key: Buffer;
}

/** A new random secret (base64url, 43 characters). */
export function generateSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

function maxmem(p: ScryptParams): number {
  // Node refuses scrypt above maxmem (default 32 MiB); allow what the parameters need, with room.
  return 128 * p.N * p.r * (p.p + 1) + 1024 * 1024;
}

/** Hash a secret with a fresh salt; returns the storable `scrypt$...` string. */
export function hashSecret(secret: string, params: ScryptParams = SCRYPT_DEFAULTS): string {
  const salt = randomBytes(SALT_BYTES);
  const key = scryptSync(secret, salt, KEY_BYTES, { ...params, maxmem: maxmem(params) });
  return formatHash({ ...params, salt, key });
}

/** The `scrypt$N$r$p$salt$key` text of a hash. */
export function formatHash(h: SecretHash): string {
  return `scrypt$${h.N}$${h.r}$${h.p}$${h.salt.toString('base64url')}$${h.key.toString('base64url')}`;
}

/**
 * Decode a `scrypt$...` string, checking the parameters are sane (so a hand-edited or hostile
 * declared hash cannot make verification allocate gigabytes).
 * @returns the hash, or a reason it is not one
 */
export function parseHash(text: string): SecretHash | { error: string } {
  const parts = text.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return { error: 'expected scrypt$N$r$p$salt$key (see `tributary admin credential hash`)' };
  const [N, r, p] = parts.slice(1, 4).map((x) => (/^\d{1,9}$/.test(x!) ? Number(x) : NaN)) as [number, number, number];
  if (!(N >= 1024 && N <= 1 << 20 && (N & (N - 1)) === 0)) return { error: 'scrypt N must be a power of two from 1024 to 1048576' };
  if (!(r >= 1 && r <= 32) || !(p >= 1 && p <= 16)) return { error: 'scrypt r must be 1..32 and p 1..16' };
  const b64 = /^[A-Za-z0-9_-]+$/;
  if (!b64.test(parts[4]!) || !b64.test(parts[5]!)) return { error: 'salt and key must be base64url' };
  const salt = Buffer.from(parts[4]!, 'base64url');
  const key = Buffer.from(parts[5]!, 'base64url');
  if (salt.length < 16 || key.length < 32) return { error: 'salt must be at least 16 bytes and key at least 32' };
  return { N, r, p, salt, key };
}

/** Verify a secret against a decoded hash (constant-time comparison). Blocks for one scrypt. */
export function verifySecret(secret: string, hash: SecretHash): boolean {
  const key = scryptSync(secret, hash.salt, hash.key.length, { N: hash.N, r: hash.r, p: hash.p, maxmem: maxmem(hash) });
  return timingSafeEqual(key, hash.key);
}

/** {@link verifySecret} on the libuv thread pool, so the event loop keeps serving other senders. */
export function verifySecretAsync(secret: string, hash: SecretHash): Promise<boolean> {
  return new Promise((resolve, reject) => {
    scrypt(secret, hash.salt, hash.key.length, { N: hash.N, r: hash.r, p: hash.p, maxmem: maxmem(hash) }, (err, key) => {
      if (err) reject(err);
      else resolve(timingSafeEqual(key, hash.key));
    });
  });
}

let dummy: SecretHash | undefined;
/**
 * A hash of a random secret nobody knows, verified when a user name is unknown so that the answer
 * takes as long as for a known user (no user-name probing by timing). Made on first use.
 */
export function dummyHash(): SecretHash {
  if (!dummy) {
    const h = parseHash(hashSecret(generateSecret()));
    if ('error' in h) throw new Error(h.error);
    dummy = h;
  }
  return dummy;
}
