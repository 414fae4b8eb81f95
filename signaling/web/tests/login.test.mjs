// After logging in, the console follows `next` only to a path on its own site.
// Run: node --test signaling/web/tests/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { safeNext } from '../js/login.js';

const origin = 'https://tandem.example';

// What the login page reads: URLSearchParams decodes `%5C` to `\` and `%09` to a tab.
const fromQuery = (query) => new URLSearchParams(query).get('next');

test('paths on this site are followed as given', () => {
  for (const next of ['/dashboard', '/session/123456789?x=1', '/admin', '/', '/?x=1']) {
    assert.equal(safeNext(next, origin), next, next);
  }
});

test('anything that could leave the site goes to the dashboard', () => {
  const offSite = [
    '/%5Cevil.example',
    '/%09/evil.example',
    fromQuery('next=/%5Cevil.example'),
    fromQuery('next=/%09/evil.example'),
    '//evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    'https://evil.example',
    'https://tandem.example.evil.example/',
    'javascript:alert(1)',
    ' /dashboard',
    '/ /evil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    '/dashboard\r\n//evil.example',
    '/\u0000/evil.example',
    'dashboard',
    '',
    null,
    undefined,
  ];
  for (const next of offSite) {
    assert.equal(safeNext(next, origin), '/dashboard', JSON.stringify(next));
  }
});

test('a followed path always resolves to this site', () => {
  for (const next of ['/a/..//evil.example', '/dashboard/../../evil.example', '/?//evil.example']) {
    const target = safeNext(next, origin);
    assert.equal(new URL(target, `${origin}/login`).origin, origin, next);
  }
});
