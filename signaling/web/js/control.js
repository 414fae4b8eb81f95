// Control of the active customer's desktop from the console (C1, R8, R9): request it,
// see who holds it, and while this rep holds it, send the mouse and keyboard over the
// controlled share's tile through the agent's input data channel.

import { ht } from './dom.js';
import { buttonName, input, keyInput, notches, surfacePoint } from './input.js';

const MOVE_EVERY_MS = 8; // at most ~120 pointer moves a second

export class Control {
  constructor({ shares, you }) {
    this.shares = shares;
    this.you = you;
    this.info = null; // { holder, agent } or null
    this.tile = null;
    this.lastMove = 0;
    this.held = new Set(); // codes this page pressed, released when control ends
    this.handlers = {
      mousemove: (e) => this.pointer(e),
      mousedown: (e) => this.press(e, true),
      mouseup: (e) => this.press(e, false),
      wheel: (e) => this.wheel(e),
      contextmenu: (e) => e.preventDefault(),
      keydown: (e) => this.key(e, true),
      keyup: (e) => this.key(e, false),
      focusout: () => this.releaseKeys(),
    };
    // Keys arrive here while in control. Physical keys go by code; what the browser
    // composes without one (an input method, a character with no key) arrives as text.
    this.sink = ht('textarea', { class: 'keyboard-sink', autocomplete: 'off', spellcheck: 'false' }, 'session-keyboard');
    this.sink.addEventListener('input', (e) => {
      if (e.isComposing) return;
      const text = this.sink.value;
      this.sink.value = '';
      if (text) this.send(input.text(text));
    });
    this.sink.addEventListener('compositionend', (e) => {
      this.sink.value = '';
      if (e.data) this.send(input.text(e.data));
    });
  }

  mine() { return Boolean(this.info && this.info.holder === this.you()); }

  // The server's word on who controls; also called when tiles change.
  update(info) {
    if (info !== undefined) this.info = info;
    const tile = this.mine() ? this.shares.tileOf(this.info.agent) : null;
    if (tile === this.tile) return;
    this.detach();
    if (tile) this.attach(tile);
  }

  attach(tile) {
    this.tile = tile;
    tile.classList.add('controlling');
    tile.append(this.sink);
    for (const [name, fn] of Object.entries(this.handlers)) tile.addEventListener(name, fn, { passive: false });
    this.sink.focus({ preventScroll: true });
  }

  detach() {
    if (!this.tile) return;
    this.releaseKeys();
    this.tile.classList.remove('controlling');
    this.sink.remove();
    for (const [name, fn] of Object.entries(this.handlers)) this.tile.removeEventListener(name, fn);
    this.tile = null;
  }

  send(event) {
    const channel = this.tile && this.shares.inputChannel(this.tile);
    if (channel && channel.readyState === 'open') channel.send(JSON.stringify(event));
  }

  point(e) {
    const video = this.tile.querySelector('video');
    return surfacePoint(video.getBoundingClientRect(), video.videoWidth, video.videoHeight, e.clientX, e.clientY);
  }

  pointer(e) {
    const now = performance.now();
    if (now - this.lastMove < MOVE_EVERY_MS) return;
    const p = this.point(e);
    if (!p) return;
    this.lastMove = now;
    this.send(input.move(p.x, p.y));
  }

  press(e, down) {
    const button = buttonName(e.button);
    const p = this.point(e);
    if (!button || !p) return;
    e.preventDefault();
    if (down) this.sink.focus({ preventScroll: true });
    this.send(input.button(button, down, p.x, p.y));
  }

  wheel(e) {
    const p = this.point(e);
    if (!p) return;
    e.preventDefault();
    this.send(input.wheel(p.x, p.y, notches(e.deltaX, e.deltaMode), notches(e.deltaY, e.deltaMode)));
  }

  key(e, down) {
    // Typing in the tile's own fields (the clipboard's text) is the rep's, not the
    // customer's.
    if (e.target !== this.sink && e.target.closest && e.target.closest('.clipboard, .files')) return;
    const event = keyInput(e, down);
    if (!event) return;
    e.preventDefault();
    if (event.type === 'key') {
      if (down) this.held.add(event.code);
      else this.held.delete(event.code);
    }
    this.send(event);
  }

  // Focus lost or control ended: let go of every key this page holds down.
  releaseKeys() {
    for (const code of this.held) this.send(input.key(code, false));
    this.held.clear();
  }
}
