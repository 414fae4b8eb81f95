// The language picker in each page's header bar: the console's languages, each by its own
// name. A choice is remembered for this browser and applied in place (i18n.js `setLanguage`),
// so a rep in a live session switches without leaving it.

import { h } from './dom.js';
import { LANGUAGES, LANGUAGE_NAMES, language, localize, setLanguage } from './i18n.js';

export function languagePicker() {
  const select = localize(h('select', { id: 'language', class: 'language' },
    LANGUAGES.map((lang) => h('option', { value: lang, lang, selected: lang === language() }, LANGUAGE_NAMES[lang]))),
  'language-picker');
  select.addEventListener('change', () => setLanguage(select.value));
  return select;
}

const bar = globalThis.document?.querySelector('header.bar');
if (bar && !bar.querySelector('#language')) bar.append(languagePicker());
