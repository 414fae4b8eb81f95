// The console says why screen sharing and calls cannot work on a page that is not secure.
// Run: node --test signaling/web/tests/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { insecureReason } from '../js/secure.js';

test('a secure page with the API has nothing to say', () => {
  const page = { secure: true, available: true, host: 'tandem.example' };
  assert.equal(insecureReason('screen', 'getDisplayMedia', page), null);
});

test('plain HTTP away from this machine names HTTPS and the address', () => {
  const page = { secure: false, available: false, host: 'tandem.example:8080' };
  const reason = insecureReason('screen', 'getDisplayMedia', page);
  assert.match(reason, /^Screen sharing needs a secure \(HTTPS\) connection/);
  assert.match(reason, /tandem\.example:8080/);
});

test('a secure page without the API blames the browser, not the connection', () => {
  const page = { secure: true, available: false, host: 'tandem.example' };
  assert.equal(insecureReason('call', 'getUserMedia', page), 'A call is not offered by this browser');
});
