import { randomBytes, scrypt } from 'node:crypto';

const KEY_LENGTH = 32;
const COST = { N: 16384, r: 8, p: 1 };

/**
 * Salts and hashes the client's SHA-1 digest here, at the gateway, so neither the broker,
 * the log nor any replica ever holds a value that logs a user in.
 */
export function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  return new Promise((resolve, reject) =>
    scrypt(password.toLowerCase(), salt, KEY_LENGTH, COST, (err, key) =>
      err ? reject(err) : resolve(`scrypt$${COST.N}$${COST.r}$${COST.p}$${salt.toString('base64')}$${key.toString('base64')}`),
    ),
  );
}
