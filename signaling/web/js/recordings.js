// Session recordings (docs/rules.md "Recording"): the list an admin (every recording) or a
// rep (the ones they started) sees, each played in the page with its chat as a text
// track, downloaded, or deleted.

import { api } from './api.js';
import { h, ht, replace } from './dom.js';
import { language } from './i18n.js';

const display = (n) => n.replace(/(\d{3})(\d{3})(\d{3})/, '$1 $2 $3');

function duration(ms) {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function size(bytes) {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

// Fill `table` (its tbody) and `player` (where a recording plays); `onError` gets a failure.
export async function showRecordings({ body, player, onError }) {
  let list;
  try {
    list = await api('GET', '/api/recordings');
  } catch (e) {
    onError(e);
    return;
  }
  if (!list.length) {
    replace(body, h('tr', {}, ht('td', { colspan: 7, class: 'muted' }, 'recordings-none')));
    return;
  }
  replace(body, list.map((r) => h('tr', { dataset: { recording: r.id, state: r.state } },
    h('td', {}, new Date(r.started_at).toLocaleString(language())),
    h('td', {}, display(r.session)),
    h('td', {}, r.title),
    h('td', {}, r.started_by_name),
    h('td', {}, r.state === 'recording' ? '…' : duration(r.duration_ms)),
    h('td', {}, size(r.bytes), ' ', ht('span', { class: `tag ${r.state}` }, 'recordings-state', { state: r.state })),
    h('td', {},
      ht('button', { class: 'secondary play', onclick: () => play(player, r) }, 'recordings-play'),
      ' ',
      ht('a', { href: `/api/recordings/${r.id}/video`, download: `tandem-${r.session}-${r.id}.mp4` }, 'recordings-download'),
      ' ',
      r.state === 'recording' ? null : ht('button', {
        class: 'danger delete',
        onclick: async () => {
          if (!confirm(`${r.title} · ${display(r.session)}: ${new Date(r.started_at).toLocaleString(language())}?`)) return;
          try {
            await api('DELETE', `/api/recordings/${r.id}`);
            await showRecordings({ body, player, onError });
          } catch (e) { onError(e); }
        },
      }, 'recordings-delete')))));
}

function play(player, r) {
  const video = h('video', { controls: true, autoplay: true, muted: true, id: 'recording-video', dataset: { recording: r.id } },
    h('track', { kind: 'captions', label: 'Chat', srclang: 'en', default: true, src: `/api/recordings/${r.id}/events` }));
  video.src = `/api/recordings/${r.id}/video`;
  replace(player, h('p', { class: 'muted' }, `${r.title} · ${display(r.session)}`), video);
  player.hidden = false;
  player.scrollIntoView({ block: 'center' });
}
