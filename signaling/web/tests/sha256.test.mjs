// The console's streaming SHA-256 (files too large to hash in one buffer) agrees with
// Node's own, for every length around the block and padding boundaries and for any way
// of cutting the input into chunks.
// Run: node --test signaling/web/tests/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Sha256 } from '../js/sha256.js';
import { hashFile } from '../js/files.js';

const reference = (bytes) => createHash('sha256').update(bytes).digest('hex');

test('the known answers of FIPS 180-4', () => {
  assert.equal(new Sha256().digest(), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(
    new Sha256().update(new TextEncoder().encode('abc')).digest(),
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  );
});

test('every length from 0 to 300 bytes, in one chunk, matches', () => {
  const data = randomBytes(300);
  for (let n = 0; n <= 300; n++) {
    const part = new Uint8Array(data.subarray(0, n));
    assert.equal(new Sha256().update(part).digest(), reference(part), `length ${n}`);
  }
});

test('any cutting into chunks gives the same hash', () => {
  const data = new Uint8Array(randomBytes(100_000));
  const want = reference(data);
  for (const size of [1, 7, 63, 64, 65, 1000, 16_384, 99_999]) {
    const sha = new Sha256();
    for (let at = 0; at < data.length; at += size) sha.update(data.subarray(at, at + size));
    assert.equal(sha.digest(), want, `chunks of ${size}`);
  }
  // An ArrayBuffer is taken as well as a Uint8Array.
  assert.equal(new Sha256().update(data.slice().buffer).digest(), want);
});

test('a hash is finished once', () => {
  const sha = new Sha256();
  sha.digest();
  assert.throws(() => sha.update(new Uint8Array(1)), /after digest/);
  assert.throws(() => sha.digest(), /twice/);
});

test('a file past the one-buffer limit is hashed a slice at a time, with progress', async () => {
  const data = randomBytes(1_000_003);
  const blob = new Blob([data]);
  const seen = [];
  const sliced = await hashFile(blob, (p) => seen.push(p), () => false, { wholeMax: 1000, slice: 65_536 });
  assert.equal(sliced, reference(data));
  assert.equal(seen.length, Math.ceil(data.length / 65_536), 'a progress report per slice');
  assert.equal(seen.at(-1), 100);
  assert.ok(seen.every((p, i) => i === 0 || p >= seen[i - 1]), 'progress only goes up');
  // Under the limit the browser's own digest does it, to the same answer.
  assert.equal(await hashFile(blob, () => {}, () => false), reference(data));
  // A transfer cancelled meanwhile stops the hashing.
  let slices = 0;
  const stopped = await hashFile(blob, () => { slices += 1; }, () => slices >= 2, { wholeMax: 1000, slice: 65_536 });
  assert.equal(stopped, null);
  assert.equal(slices, 2);
});
