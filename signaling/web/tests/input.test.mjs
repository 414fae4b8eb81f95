// The console's input events must be exactly the agent's fixtures (crates/input/fixtures),
// and a click must land on the right point of the shared surface.
// Run: node --test signaling/web/tests/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { input, keyInput, notches, surfacePoint } from '../js/input.js';

const fixtures = fileURLToPath(new URL('../../../crates/input/fixtures/', import.meta.url));
const fixture = (name) => JSON.parse(readFileSync(`${fixtures}${name}.json`, 'utf8'));

const cases = {
  move: (f) => input.move(f.x, f.y),
  button: (f) => input.button(f.button, f.down, f.x, f.y),
  wheel: (f) => input.wheel(f.x, f.y, f.dx, f.dy),
  key: (f) => input.key(f.code, f.down),
  text: (f) => input.text(f.text),
};

for (const [name, build] of Object.entries(cases)) {
  test(`console builds the ${name} input event exactly as the fixture`, () => {
    const f = fixture(name);
    assert.deepEqual(build(f), f);
  });
}

test('a point maps onto the picture, not the bars around it', () => {
  // A 1280×720 video in a 640×480 box: scaled to 640×360, bars of 60 px above and below.
  const box = { left: 100, top: 10, width: 640, height: 480 };
  assert.deepEqual(surfacePoint(box, 1280, 720, 100, 70), { x: 0, y: 0 });
  assert.deepEqual(surfacePoint(box, 1280, 720, 420, 250), { x: 0.5, y: 0.5 });
  assert.deepEqual(surfacePoint(box, 1280, 720, 740, 430), { x: 1, y: 1 });
  assert.equal(surfacePoint(box, 1280, 720, 420, 40), null, 'the bar above is not the surface');
  assert.equal(surfacePoint(box, 0, 0, 420, 250), null, 'no picture yet');
});

test('keys go by physical code; keys without one are left to the text path', () => {
  assert.deepEqual(keyInput({ code: 'KeyA', key: 'A' }, true), { type: 'key', code: 'KeyA', down: true });
  assert.deepEqual(keyInput({ code: 'ShiftLeft', key: 'Shift' }, false), { type: 'key', code: 'ShiftLeft', down: false });
  assert.equal(keyInput({ code: '', key: 'é' }, true), null);
  assert.equal(keyInput({ code: 'Unidentified', key: 'Dead' }, true), null);
  assert.equal(keyInput({ code: 'KeyE', key: 'Process', isComposing: true }, true), null, 'an input method is composing');
});

test('wheel deltas become bounded notches', () => {
  assert.equal(notches(100, 0), 1);
  assert.equal(notches(-300, 0), -3);
  assert.equal(notches(4, 0), 1, 'a small turn still scrolls');
  assert.equal(notches(0, 0), 0);
  assert.equal(notches(1e6, 0), 20);
  assert.equal(notches(6, 1), 2);
});
