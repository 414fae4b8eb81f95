// Small DOM helpers: build elements from data, never from HTML strings.

import { localize } from './i18n.js';

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// `h` whose text is the catalogue's message `id` (with `args`), marked so that a language
// change translates it again in place (i18n.js `localize`).
export function ht(tag, attrs, id, args = null) {
  return localize(h(tag, attrs), id, args);
}

export function replace(container, ...nodes) {
  container.replaceChildren(...nodes.flat().filter(Boolean));
}

export const $ = (selector) => document.querySelector(selector);

export function show(el, text) {
  el.textContent = sentence(text);
  el.hidden = !text;
}

// Server messages are lower-case clauses; show them as sentences.
export function sentence(text) {
  if (!text) return '';
  const s = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?…]$/.test(s) ? s : s + '.';
}
