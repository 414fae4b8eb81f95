// The customer's page offers the agent for their own system first, as a download that
// carries their agent token (so opening it attaches it to the session), says per system
// what to do with it, keeps the plain agent's command under "Advanced", and says which
// download the server has not set up instead of linking to it.
// Run: node --test signaling/web/tests/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { downloadsAvailable, instructions, linuxRunCommand, offerOrder, personalDownload, platformOf } from '../js/agent-download.js';
import { setLanguage } from '../js/i18n.js';

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

const session = { server: 'https://tandem.example', token: 'agt_abc-123_x', session: '123456789' };

test('the download carries the token and has the name the server gives it', () => {
  assert.deepEqual(personalDownload('windows', session),
    { href: '/download/tandem-agent.exe?token=agt_abc-123_x', file: 'tandem-support-123456789.exe' });
  assert.deepEqual(personalDownload('linux', session),
    { href: '/download/tandem-agent?token=agt_abc-123_x', file: 'tandem-support-123456789' });
  assert.equal(personalDownload('linux', { token: 'agt_a+b/c' }).href, '/download/tandem-agent?token=agt_a%2Bb%2Fc',
    'a token is always escaped into the query');
});

test('Windows: download, then double-click it; it connects by itself and asks first', () => {
  const windows = instructions('windows', { available: true, ...session });
  assert.deepEqual(windows.download, personalDownload('windows', session));
  assert.equal(windows.link, 'Download the Tandem agent for Windows');
  assert.equal(windows.text,
    'Download, then open the file (double-click it). It connects to this session by itself and asks you before anything is shared.');
  assert.equal(windows.run, null, 'no command to copy');
  assert.ok(windows.notes.some((n) => /More info.*Run anyway/.test(n)), 'SmartScreen warns about an unsigned download');
});

test('Linux: download, then one command that allows and starts it', () => {
  const linux = instructions('linux', { available: true, ...session });
  assert.deepEqual(linux.download, personalDownload('linux', session));
  assert.match(linux.text, /^Download, then open a terminal and run this command/);
  assert.match(linux.text, /connects to this session by itself and asks you before anything is shared/);
  assert.equal(linux.run,
    'cd "$(xdg-user-dir DOWNLOAD)" && chmod +x tandem-support-123456789 && ./tandem-support-123456789');
  assert.equal(linuxRunCommand('tandem-support-1'), 'cd "$(xdg-user-dir DOWNLOAD)" && chmod +x tandem-support-1 && ./tandem-support-1');
  assert.doesNotMatch(linux.run, /agt_/, 'the token is in the file, not on the command line');
});

test('Advanced keeps the plain agent and the attach command for each system', () => {
  const linux = instructions('linux', { available: true, ...session });
  assert.deepEqual(linux.advanced.plain, { href: '/download/tandem-agent', file: 'tandem-agent' });
  assert.match(linux.advanced.text, /^Then run this in a terminal/);
  assert.equal(linux.advanced.command,
    'chmod +x tandem-agent && ./tandem-agent attach --server https://tandem.example --token agt_abc-123_x');
  const windows = instructions('windows', { available: true, ...session });
  assert.deepEqual(windows.advanced.plain, { href: '/download/tandem-agent.exe', file: 'tandem-agent.exe' });
  assert.match(windows.advanced.text, /^Then run this in a Command Prompt/);
  assert.equal(windows.advanced.command,
    '"%USERPROFILE%\\Downloads\\tandem-agent.exe" attach --server https://tandem.example --token agt_abc-123_x');
});

test('a new token changes the link and the command', () => {
  const before = instructions('windows', { available: true, ...session });
  const after = instructions('windows', { available: true, ...session, token: 'agt_fresh' });
  assert.equal(after.download.href, '/download/tandem-agent.exe?token=agt_fresh');
  assert.notEqual(after.download.href, before.download.href);
  assert.match(after.advanced.command, /--token agt_fresh$/);
});

test('a download the server has not set up is named, not linked; the command stays', () => {
  const windows = instructions('windows', { available: false, ...session });
  assert.equal(windows.download, null);
  assert.equal(windows.advanced.plain, null);
  assert.equal(windows.text, 'The Tandem agent for Windows is not set up on this server: ask your support rep for tandem-agent.exe.');
  assert.match(windows.advanced.command, /--token agt_abc-123_x$/);
  const linux = instructions('linux', { available: false, ...session });
  assert.equal(linux.run, null, 'no command for a file that cannot be downloaded');
  const unknown = instructions('windows', { available: null, ...session });
  assert.notEqual(unknown.download, null, 'no answer is no reason to hide the link');
});

test('the words come from the catalogue: Norwegian on request, commands unchanged', async () => {
  await setLanguage('nb');
  try {
    const windows = instructions('windows', { available: true, ...session });
    assert.equal(windows.link, 'Last ned Tandem-agenten for Windows');
    assert.match(windows.text, /dobbeltklikk/);
    const linux = instructions('linux', { available: true, ...session });
    assert.match(linux.text, /terminal/);
    assert.equal(linux.run, linuxRunCommand('tandem-support-123456789'));
  } finally {
    await setLanguage('en');
  }
});

test('availability is asked with HEAD, without a token: 404 is not set up, no answer is unknown', async () => {
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
