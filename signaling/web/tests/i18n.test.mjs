// The console's translations: every language has every message English has (and no other),
// each formats without errors, `t` falls back to English and then to the id, plurals follow
// the language, and every id the pages use exists.
// Run: node --test signaling/web/tests/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FluentBundle, FluentResource } from '../js/vendor/fluent-bundle.js';
import { LANGUAGES, chooseLanguage, language, setLanguage, t, useCatalogues } from '../js/i18n.js';

const web = fileURLToPath(new URL('../', import.meta.url));
const FILES = ['console.ftl', 'download.ftl'];

function read(lang, file) {
  const path = `${web}locales/${lang}/${file}`;
  return existsSync(path) ? readFileSync(path, 'utf8') : null;
}

// A catalogue's messages: id → the names of its attributes, and whether it has a value.
// Fails on anything the parser skipped as junk (a typo would otherwise just vanish).
function messages(text, where) {
  const resource = new FluentResource(text);
  const declared = text.split('\n').filter((line) => /^[a-zA-Z][\w-]*\s*=/.test(line)).length;
  const found = resource.body.filter((entry) => !entry.id.startsWith('-'));
  assert.equal(found.length, declared, `${where}: some messages did not parse`);
  return new Map(found.map((m) => [m.id, { value: m.value !== null, attributes: Object.keys(m.attributes).sort() }]));
}

for (const file of FILES) {
  test(`${file}: every language has exactly the messages English has`, () => {
    const english = read('en', file);
    if (english === null) return; // download.ftl may not exist (yet): nothing to compare
    const en = messages(english, `en/${file}`);
    for (const lang of LANGUAGES.filter((l) => l !== 'en')) {
      const text = read(lang, file);
      assert.notEqual(text, null, `${lang}/${file} is missing`);
      const other = messages(text, `${lang}/${file}`);
      const lacking = [...en.keys()].filter((id) => !other.has(id));
      const extra = [...other.keys()].filter((id) => !en.has(id));
      assert.deepEqual(lacking, [], `${lang}/${file} lacks these English messages`);
      assert.deepEqual(extra, [], `${lang}/${file} has messages English does not`);
      for (const [id, shape] of en) {
        assert.deepEqual(other.get(id), shape, `${lang}/${file}: ${id} has another value or other attributes`);
      }
    }
  });
}

// Arguments that reach every variant a message may choose.
const SAMPLES = {
  role: ['primary_rep', 'assistant', 'observer', 'customer', 'agent', 'x'],
  kind: ['queue', 'agent'],
  reason: ['released', 'revoked_by_customer', 'switched_customer', 'participant_left', 'session_transferred', 'x'],
  invitee: ['customer', 'support_rep', 'x'],
  feature: ['screen', 'call'],
  muted: ['yes', 'no'],
  video: ['yes', 'no'],
  action: ['started', 'call_ended', 'x'],
  count: [1, 2, 5],
  customers: [1, 2],
  records: [0, 1, 7],
};

test('every message formats without errors in every language, whatever it selects on', () => {
  for (const lang of LANGUAGES) {
    for (const file of FILES) {
      const text = read(lang, file);
      if (text === null) continue;
      const bundle = new FluentBundle(lang, { useIsolating: false });
      bundle.addResource(new FluentResource(text));
      for (const [id] of messages(text, `${lang}/${file}`)) {
        const message = bundle.getMessage(id);
        const patterns = [message.value, ...Object.values(message.attributes)].filter(Boolean);
        for (const pattern of patterns) {
          for (let i = 0; i < 6; i++) {
            const errors = [];
            const out = bundle.formatPattern(pattern, argsFor(pattern, i), errors);
            assert.deepEqual(errors.map(String), [], `${lang}/${file} ${id}`);
            assert.ok(!out.includes('{'), `${lang}/${file} ${id}: ${out}`);
          }
        }
      }
    }
  }
});

// A value for every variable the pattern names: the `i`th sample, or a made-up name.
function argsFor(pattern, i) {
  const names = new Set();
  const walk = (node) => {
    if (!node || typeof node !== 'object') return;
    if (node.type === 'var') names.add(node.name);
    for (const value of Object.values(node)) walk(value);
  };
  walk(pattern);
  const sample = (name) => (SAMPLES[name] ? SAMPLES[name][i % SAMPLES[name].length] : `«${name}»`);
  return Object.fromEntries([...names].map((name) => [name, sample(name)]));
}

test('the browser language picks the console language; a stored choice wins', () => {
  assert.equal(chooseLanguage(null, ['nb-NO', 'en']), 'nb');
  assert.equal(chooseLanguage(null, ['no']), 'nb');
  assert.equal(chooseLanguage(null, ['nn-NO']), 'nb', 'Nynorsk readers get Bokmål before English');
  assert.equal(chooseLanguage(null, ['de-DE', 'nb']), 'nb', 'the first language the console has');
  assert.equal(chooseLanguage(null, ['en-GB', 'nb']), 'en');
  assert.equal(chooseLanguage(null, ['fr', 'de']), 'en');
  assert.equal(chooseLanguage(null, []), 'en');
  assert.equal(chooseLanguage(null, undefined), 'en');
  assert.equal(chooseLanguage('en', ['nb']), 'en');
  assert.equal(chooseLanguage('nb', ['en']), 'nb');
  assert.equal(chooseLanguage('xx', ['nb']), 'nb', 'an unknown stored choice is ignored');
});

test('the real catalogues: English by default, Bokmål on request, plurals per language', async () => {
  await setLanguage('en');
  assert.equal(language(), 'en');
  assert.equal(t('session-share-screen'), 'Share my screen');
  assert.equal(t('dashboard-session-detail', { role: 'primary_rep', customers: 1 }), '— primary rep, 1 customer');
  assert.equal(t('dashboard-session-detail', { role: 'assistant', customers: 2 }), '— assistant, 2 customers');
  assert.equal(t('dashboard-agent-sessions', { count: 1 }), '1 session(s)', 'tests/tests/webacd.rs reads this');
  await setLanguage('nb');
  assert.equal(language(), 'nb');
  assert.equal(t('session-share-screen'), 'Del skjermen');
  assert.equal(t('session-end'), 'Avslutt økten');
  assert.equal(t('invite-customer'), 'Kunde');
  assert.equal(t('dashboard-agent-sessions', { count: 1 }), '1 økt');
  assert.equal(t('dashboard-agent-sessions', { count: 3 }), '3 økter');
  assert.equal(t('transfer-too-long', { count: 346, max: 345 }), 'Meldingen har 346 tegn; høyst 345 får plass.');
  await setLanguage('xx');
  assert.equal(language(), 'en', 'an unknown language is English');
});

test('t falls back to English, then to the id, and never throws', async () => {
  await useCatalogues({
    en: ['only-english = Only in English\nboth = Both\nfiles = { $n ->\n    [one] one file\n   *[other] { $n } files\n}\n', ''],
    nb: ['both = Begge\nbroken = { $n ->\n', 'files = { $n ->\n    [one] én fil\n   *[other] { $n } filer\n}\n'],
  }, 'nb');
  assert.equal(t('both'), 'Begge');
  assert.equal(t('only-english'), 'Only in English');
  assert.equal(t('nowhere'), 'nowhere');
  assert.equal(t('broken'), 'broken', 'a message that does not parse is missing');
  assert.equal(t('files', { n: 1 }), 'én fil', 'the second file of a language counts as well');
  assert.equal(t('files', { n: 4 }), '4 filer');
  assert.doesNotThrow(() => t('files'));
  assert.doesNotThrow(() => t(undefined));
  await useCatalogues({ en: 'files = { $n ->\n    [one] one file\n   *[other] { $n } files\n}\n' }, 'en');
  assert.equal(t('files', { n: 1 }), 'one file');
  assert.equal(t('files', { n: 0 }), '0 files');
  // Back to the real catalogues for any test after this one.
  await useCatalogues(Object.fromEntries(LANGUAGES.map((l) => [l, FILES.map((f) => read(l, f) ?? '')])), 'en');
});

// The ids the pages name: every `data-l10n-id` in the markup, and the literal ids the
// scripts pass to t(), localize() and ht(). Ids built at run time are covered the other way
// round: every English message must be named somewhere in web/.
function sources() {
  const html = readdirSync(web).filter((f) => f.endsWith('.html')).map((f) => readFileSync(`${web}${f}`, 'utf8'));
  const js = readdirSync(`${web}js`).filter((f) => f.endsWith('.js')).map((f) => readFileSync(`${web}js/${f}`, 'utf8'));
  return { html, js };
}

test('every id the pages and scripts use is in the English catalogue, and every message is used', () => {
  const en = new Map();
  for (const file of FILES) {
    const text = read('en', file);
    if (text !== null) for (const [id, shape] of messages(text, `en/${file}`)) en.set(id, shape);
  }
  const { html, js } = sources();
  const used = new Set();
  for (const page of html) for (const m of page.matchAll(/data-l10n-id="([^"]+)"/g)) used.add(m[1]);
  for (const script of js) {
    for (const m of script.matchAll(/\bt\(\s*'([^']+)'/g)) used.add(m[1]);
    for (const m of script.matchAll(/\blocalize\([^,()]+(?:\([^()]*\))?,\s*'([^']+)'/g)) used.add(m[1]);
    for (const m of script.matchAll(/\bht\('\w+',\s*\{[^{}]*\},\s*'([^']+)'/g)) used.add(m[1]);
  }
  assert.ok(used.size > 100, `only ${used.size} ids found: is the search still right?`);
  const unknown = [...used].filter((id) => !en.has(id));
  assert.deepEqual(unknown, [], 'ids the console uses that English does not have');
  const everything = [...html, ...js].join('\n');
  const unused = [...en.keys()].filter((id) => !everything.includes(`'${id}'`) && !everything.includes(`"${id}"`));
  assert.deepEqual(unused, [], 'English messages nothing names');
});
