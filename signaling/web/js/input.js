// Remote input (C1, R8): the events the console sends on the input data channel while this
// rep holds control. Format: crates/input (fixtures in crates/input/fixtures), validated
// again by the agent. Coordinates are normalised to the shared surface as the video shows
// it (object-fit: contain leaves bars that are not the surface).

export const input = {
  move: (x, y) => ({ type: 'move', x, y }),
  button: (button, down, x, y) => ({ type: 'button', button, down, x, y }),
  wheel: (x, y, dx, dy) => ({ type: 'wheel', x, y, dx, dy }),
  key: (code, down) => ({ type: 'key', code, down }),
  text: (text) => ({ type: 'text', text }),
};

const BUTTONS = ['left', 'middle', 'right'];
export function buttonName(index) { return BUTTONS[index] || null; }

// Where (clientX, clientY) falls on a video of videoWidth × videoHeight drawn into `box`
// (its bounding rectangle) with object-fit: contain; null outside the picture.
export function surfacePoint(box, videoWidth, videoHeight, clientX, clientY) {
  if (!videoWidth || !videoHeight || !box.width || !box.height) return null;
  const scale = Math.min(box.width / videoWidth, box.height / videoHeight);
  const w = videoWidth * scale;
  const hgt = videoHeight * scale;
  const left = box.left + (box.width - w) / 2;
  const top = box.top + (box.height - hgt) / 2;
  const x = (clientX - left) / w;
  const y = (clientY - top) / hgt;
  if (x < 0 || x > 1 || y < 0 || y > 1) return null;
  return { x, y };
}

// A keyboard event as input: the physical key by code. null for events with no physical
// key (an input method at work, a synthesised character): their text arrives through the
// page's keyboard sink as an input event instead.
export function keyInput(event, down) {
  if (event.isComposing || event.key === 'Process') return null;
  if (event.code && event.code !== 'Unidentified') return input.key(event.code, down);
  return null;
}

// Wheel deltas to notches, whatever unit the browser reports.
export function notches(delta, mode) {
  const perNotch = mode === 1 ? 3 : mode === 2 ? 1 : 100; // lines, pages, pixels
  const n = Math.round(delta / perNotch);
  return Math.max(-20, Math.min(20, n === 0 && delta !== 0 ? Math.sign(delta) : n));
}
