// The customer's page offers the agent for their own system first, with that system's
// command, and says which download the server has not set up instead of linking to it.
// Run: node --test signaling/web/tests/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { downloadsAvailable, instructions, offerOrder, platformOf } from '../js/agent-download.js';

const WINDOWS_CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
const WINDOWS_FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0';
const LINUX_FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0';
const LINUX_CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

test('a Windows browser gets the Windows agent first, from userAgentData or the user agent', () => {
  assert.equal(platformOf({ userAgentData: { platform: 'Windows' }, userAgent: WINDOWS_CHROME }), 'windows');
  assert.equal(platformOf({ userAgent: WINDOWS_FIREFOX }), 'windows', 'Firefox has no userAgentData');
  assert.deepEqual(offerOrder('windows'), ['windows', 'linux']);
});

test('every other browser gets the Linux agent first', () => {
  assert.equal(platformOf({ userAgentData: { platform: 'Linux' }, userAgent: LINUX_CHROME }), 'linux');
  assert.equal(platformOf({ userAgent: LINUX_FIREFOX }), 'linux');
  assert.equal(platformOf({ userAgentData: { platform: '' }, userAgent: '' }), 'linux');
  assert.equal(platformOf(undefined), 'linux');
  assert.deepEqual(offerOrder('linux'), ['linux', 'windows']);
});

const session = { server: 'https://tandem.example', token: 'agt_abc123' };

test('Linux: download tandem-agent, make it executable, run it in a terminal', () => {
  const linux = instructions('linux', { available: true, ...session });
  assert.deepEqual(linux.download, { href: '/download/tandem-agent', file: 'tandem-agent' });
  assert.match(linux.text, /^ \(Linux\), then run this in a terminal/);
  assert.equal(linux.command,
    'chmod +x tandem-agent && ./tandem-agent attach --server https://tandem.example --token agt_abc123');
});

test('Windows: download tandem-agent.exe, run it from Downloads in a Command Prompt', () => {
  const windows = instructions('windows', { available: true, ...session });
  assert.deepEqual(windows.download, { href: '/download/tandem-agent.exe', file: 'tandem-agent.exe' });
  assert.match(windows.text, /^ \(Windows\), then run this in a Command Prompt/);
  assert.equal(windows.command,
    '"%USERPROFILE%\\Downloads\\tandem-agent.exe" attach --server https://tandem.example --token agt_abc123');
});

test('a download the server has not set up is named, not linked; the command stays', () => {
  const windows = instructions('windows', { available: false, ...session });
  assert.equal(windows.download, null);
  assert.match(windows.text, /^The Tandem agent for Windows is not set up on this server: ask your support rep for tandem-agent\.exe/);
  assert.match(windows.command, /--token agt_abc123$/);
  const unknown = instructions('windows', { available: null, ...session });
  assert.notEqual(unknown.download, null, 'no answer is no reason to hide the link');
});

test('availability is asked with HEAD: 404 is not set up, no answer is unknown', async () => {
  const asked = [];
  const answers = { '/download/tandem-agent': { ok: true, status: 200 }, '/download/tandem-agent.exe': { ok: false, status: 404 } };
  const fetchFn = async (href, init) => { asked.push([init.method, href]); return answers[href]; };
  assert.deepEqual(await downloadsAvailable(fetchFn), { linux: true, windows: false });
  assert.deepEqual(asked.sort(), [['HEAD', '/download/tandem-agent'], ['HEAD', '/download/tandem-agent.exe']]);

  const flaky = async (href) => {
    if (href.endsWith('.exe')) throw new TypeError('network error');
    return { ok: false, status: 503 };
  };
  assert.deepEqual(await downloadsAvailable(flaky), { linux: null, windows: null });
});
