// The name the console shows and saves a customer's file under (files.js).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plainName } from '../js/files.js';

test('a name from the agent loses folders and characters that change how it reads', () => {
  assert.equal(plainName('support.log'), 'support.log');
  assert.equal(plainName('../../etc/passwd'), 'passwd');
  assert.equal(plainName('C:\\Users\\Ann\\log.txt'), 'log.txt');
  // A right-to-left override would show "invoiceexe.pdf".
  assert.equal(plainName('invoice\u202Efdp.exe'), 'invoicefdp.exe');
  assert.equal(plainName('a\u0000b\u001bc'), 'abc');
  assert.equal(plainName('\u200B'), 'file');
  assert.equal(plainName(''), 'file');
});
