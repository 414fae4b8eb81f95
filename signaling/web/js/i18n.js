// The console's translations, with Fluent (js/vendor/fluent-bundle.js). See docs/i18n.md.
//
// The language is the one the user picked in a page's header (remembered in localStorage),
// else the first of the browser's languages (navigator.languages) that the console has, else
// English. Each browser chooses for itself: a customer and a rep in one session may differ.
// The catalogues are `web/locales/<lang>/console.ftl` and `download.ftl`, served under
// `/assets/locales/<lang>/` (a missing `download.ftl` counts as empty). A message missing from
// the chosen language falls back to English, then to its id: `t` never throws.
//
// Importing this module loads the catalogues (top-level await), so `t` works in every module
// that imports it; `await ready()` is the same promise, for callers that want to say so.
// Markup says what it shows with `data-l10n-id` (and `data-l10n-args`, JSON), and
// `translateDom()` fills it in, once the catalogues are loaded and after every language
// change (call it again for markup added later); code builds its text with `t()`, or with
// `localize()` to also mark the element so a language change re-translates it in place (the
// session goes on).
//
// In Node (the console's unit tests, `node --test signaling/web/tests/`) there is no
// document: the import reads the same files from `web/locales/` with node:fs, in English,
// so `t` works right after `import`. `await setLanguage('nb')` switches language, and
// `useCatalogues({ en: ftlText, nb: ftlText })` replaces the catalogues with given text
// (each value one string, or an array of strings, one per file).

import { FluentBundle, FluentResource } from './vendor/fluent-bundle.js';

export const LANGUAGES = ['en', 'nb'];
// Each language by its own name, for the picker: someone who cannot read the current
// language still finds theirs.
export const LANGUAGE_NAMES = { en: 'English', nb: 'Norsk (bokmål)' };
const FALLBACK = 'en';
const FILES = ['console.ftl', 'download.ftl'];
const STORAGE_KEY = 'tandem.language';
// The attributes a message's Fluent attributes may set (`.placeholder = …`): text a person
// reads, never anything that changes what an element does.
const TEXT_ATTRIBUTES = ['placeholder', 'title', 'aria-label', 'alt', 'label'];

const inBrowser = typeof globalThis.document !== 'undefined';

// This page's one translation state: the language, its bundle and English's, the catalogue
// texts already read (by language), and who to tell when the language changes.
const state = {
  lang: FALLBACK,
  bundles: [],
  texts: new Map(),
  loading: null,
  listeners: new Set(),
};

// The console's language for a stored choice and the browser's preferred languages.
export function chooseLanguage(stored, preferred = []) {
  if (LANGUAGES.includes(stored)) return stored;
  for (const tag of preferred ?? []) {
    const lang = supported(tag);
    if (lang) return lang;
  }
  return FALLBACK;
}

// Norwegian in any form (`no`, `nb`, `nn`, with a region) reads Bokmål best of what we have.
function supported(tag) {
  const primary = String(tag).toLowerCase().split(/[-_]/)[0];
  if (primary === 'no' || primary === 'nb' || primary === 'nn') return 'nb';
  return LANGUAGES.includes(primary) ? primary : null;
}

function storedChoice() {
  try {
    return globalThis.localStorage?.getItem(STORAGE_KEY) ?? null;
  } catch {
    return null; // storage refused (privacy settings): the browser's languages decide
  }
}

async function readCatalogue(lang, file) {
  const url = new URL(`../locales/${lang}/${file}`, import.meta.url);
  try {
    if (!inBrowser) {
      const { readFile } = await import('node:fs/promises');
      return await readFile(url, 'utf8');
    }
    const response = await fetch(url);
    return response.ok ? await response.text() : '';
  } catch {
    return '';
  }
}

async function texts(lang) {
  if (!state.texts.has(lang)) {
    state.texts.set(lang, Promise.all(FILES.map((file) => readCatalogue(lang, file))));
  }
  return state.texts.get(lang);
}

function bundle(lang, sources) {
  // No Unicode isolation marks around placeables: they would end up in copied commands
  // and in the text tests compare.
  const result = new FluentBundle(lang, { useIsolating: false });
  for (const source of sources) result.addResource(new FluentResource(source));
  return result;
}

async function use(lang) {
  const langs = lang === FALLBACK ? [lang] : [lang, FALLBACK];
  const sources = await Promise.all(langs.map(texts));
  state.bundles = langs.map((l, i) => bundle(l, sources[i]));
  state.lang = lang;
  // The page's markup (module scripts run once it is parsed), and every marked element
  // built since, in this language.
  translateDom();
}

// Loads the catalogues once; resolves when `t` works.
export function ready() {
  state.loading ??= use(inBrowser
    ? chooseLanguage(storedChoice(), globalThis.navigator?.languages ?? [globalThis.navigator?.language])
    : FALLBACK);
  return state.loading;
}

// Replaces the catalogues with the given Fluent text, by language (tests).
export function useCatalogues(catalogues, lang = FALLBACK) {
  state.texts = new Map(Object.entries(catalogues)
    .map(([l, text]) => [l, Promise.resolve([text].flat())]));
  state.loading = use(lang);
  return state.loading;
}

export function language() {
  return state.lang;
}

// A message (value and attributes) from the chosen language, else English's.
function message(id) {
  for (const b of state.bundles) {
    const found = b.getMessage(id);
    if (found) return { bundle: b, found };
  }
  return null;
}

function format(b, pattern, args) {
  try {
    return b.formatPattern(pattern, args, []);
  } catch {
    return null;
  }
}

// The message `id` formatted with `args`, in the chosen language, else English, else `id`.
export function t(id, args = {}) {
  for (const b of state.bundles) {
    const found = b.getMessage(id);
    if (found?.value) {
      const text = format(b, found.value, args);
      if (text !== null) return text;
    }
  }
  return id;
}

// Fills `el` from its `data-l10n-id`: the message's value as its text (when it has one), and
// its attributes as the element's attributes.
function translateElement(el) {
  const id = el.dataset.l10nId;
  let args = {};
  if (el.dataset.l10nArgs) {
    try {
      args = JSON.parse(el.dataset.l10nArgs);
    } catch {
      args = {};
    }
  }
  const hit = message(id);
  if (!hit) {
    el.textContent = id;
    return;
  }
  if (hit.found.value) el.textContent = t(id, args);
  for (const [name, pattern] of Object.entries(hit.found.attributes)) {
    if (!TEXT_ATTRIBUTES.includes(name)) continue;
    const text = format(hit.bundle, pattern, args);
    if (text !== null) el.setAttribute(name, text);
  }
}

// Translates every `data-l10n-id` element in `root` (and `root` itself).
export function translateDom(root = globalThis.document) {
  if (!root?.querySelectorAll) return;
  if (root.dataset?.l10nId) translateElement(root);
  for (const el of root.querySelectorAll('[data-l10n-id]')) translateElement(el);
  if (inBrowser) document.documentElement.lang = state.lang;
}

// Marks `el` with a message and its arguments and translates it now; a language change
// translates it again. Returns `el`, for building: `localize(h('p'), 'join-wait')`.
export function localize(el, id, args = null) {
  el.dataset.l10nId = id;
  if (args) el.dataset.l10nArgs = JSON.stringify(args);
  else delete el.dataset.l10nArgs;
  translateElement(el);
  return el;
}

// `fn(lang)` runs after each language change; returns a function that stops it.
export function onLanguageChange(fn) {
  state.listeners.add(fn);
  return () => state.listeners.delete(fn);
}

// Switches to `lang` (unknown: English) and remembers it for this browser; the page's
// marked elements are re-translated in place and listeners re-render the rest.
export async function setLanguage(lang) {
  const chosen = LANGUAGES.includes(lang) ? lang : FALLBACK;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, chosen);
  } catch {
    // Not remembered (storage refused); this page still switches.
  }
  await ready();
  state.loading = use(chosen);
  await state.loading;
  for (const fn of state.listeners) fn(chosen);
}

await ready();
