// The customer's "share your screen" help: the agent for their system offered first, the
// other one a click away. The download carries the customer's agent token, so the agent
// attaches to this session by itself once opened (docs/agent.md, "Double-click launch");
// the command that attaches a plain agent stays under "Advanced" for terminal users.

import { h, replace } from './dom.js';
import { onLanguageChange, t } from './i18n.js';

// The agents the server offers, by system. `available` comes from asking the server
// (`downloadsAvailable`): false when it said the download is not set up.
export const AGENTS = {
  linux: {
    name: 'Linux',
    href: '/download/tandem-agent',
    file: 'tandem-agent',
    extension: '',
    steps: () => t('download-linux-steps'),
    advanced: () => t('download-advanced-linux'),
    command: (server, token) => `chmod +x tandem-agent && ./tandem-agent attach --server ${server} --token ${token}`,
  },
  windows: {
    name: 'Windows',
    href: '/download/tandem-agent.exe',
    file: 'tandem-agent.exe',
    extension: '.exe',
    steps: () => t('download-windows-steps'),
    advanced: () => t('download-advanced-windows'),
    command: (server, token) => `"%USERPROFILE%\\Downloads\\tandem-agent.exe" attach --server ${server} --token ${token}`,
  },
};

// The customer's system as the browser reports it: Windows, else Linux (the agent runs on
// nothing else). Chromium's userAgentData says it plainly; the user agent string otherwise.
export function platformOf(nav) {
  const platform = nav?.userAgentData?.platform || nav?.userAgent || '';
  return /windows/i.test(platform) ? 'windows' : 'linux';
}

// The systems in the order to offer them: the customer's own first.
export function offerOrder(platform) {
  return platform === 'windows' ? ['windows', 'linux'] : ['linux', 'windows'];
}

// Asks the server, without downloading, which agents it has: `{ linux, windows }`, each
// true, false (404: not set up) or null (no answer; the link is offered anyway).
export async function downloadsAvailable(fetchFn) {
  const ask = async (href) => {
    try {
      const response = await fetchFn(href, { method: 'HEAD', cache: 'no-store' });
      if (response.ok) return true;
      return response.status === 404 ? false : null;
    } catch {
      return null;
    }
  };
  const systems = Object.keys(AGENTS);
  const answers = await Promise.all(systems.map((os) => ask(AGENTS[os].href)));
  return Object.fromEntries(systems.map((os, i) => [os, answers[i]]));
}

// The customer's own agent: the download with their token, under the name the server gives
// it (`tandem-support-<session number>`, `.exe` on Windows).
export function personalDownload(os, { token, session }) {
  const agent = AGENTS[os];
  const file = `tandem-support${session ? `-${session}` : ''}${agent.extension}`;
  return { href: `${agent.href}?token=${encodeURIComponent(token)}`, file };
}

// Linux downloads lose the execute bit: the one command that restores it and starts the
// agent, from the Downloads folder under whatever name the desktop's language gives it.
export function linuxRunCommand(file) {
  return `cd "$(xdg-user-dir DOWNLOAD)" && chmod +x ${file} && ./${file}`;
}

// What to show for one system, as data: the personal download and what to do with it (or
// why there is none), and under "Advanced" the plain agent and its attach command.
export function instructions(os, { available, server, token, session }) {
  const agent = AGENTS[os];
  const missing = available === false;
  const download = missing ? null : personalDownload(os, { token, session });
  return {
    os,
    download,
    link: t('download-link', { system: agent.name }),
    text: missing ? t('download-not-set-up', { system: agent.name, file: agent.file }) : agent.steps(),
    run: download && os === 'linux' ? linuxRunCommand(download.file) : null,
    notes: missing ? [] : [
      os === 'windows' ? t('download-windows-warning') : t('download-linux-folder'),
      t('download-expired-hint'),
    ],
    advanced: {
      plain: missing ? null : { href: agent.href, file: agent.file },
      text: agent.advanced(),
      command: agent.command(server, token),
    },
  };
}

// The element ids per system; the Linux ones are what the page has always had.
const IDS = {
  linux: { download: 'agent-download', run: 'agent-run', advanced: 'agent-advanced', plain: 'agent-plain-download', command: 'agent-command' },
  windows: { download: 'agent-download-windows', run: 'agent-run-windows', advanced: 'agent-advanced-windows', plain: 'agent-plain-download-windows', command: 'agent-command-windows' },
};

function steps({ os, download, link, text, run, notes, advanced }, openDetails) {
  const ids = IDS[os];
  const anchor = download
    ? h('a', { href: download.href, download: download.file, id: ids.download }, link)
    : null;
  const plain = advanced.plain
    ? h('p', {}, t('download-advanced-plain'), ' ',
      h('a', { href: advanced.plain.href, download: advanced.plain.file, id: ids.plain }, advanced.plain.file))
    : null;
  return [
    anchor ? h('p', { dataset: { os } }, anchor) : null,
    h('p', { dataset: { os } }, text),
    run ? h('pre', { id: ids.run }, run) : null,
    notes.map((note) => h('p', { class: 'muted' }, note)),
    h('details', { id: ids.advanced, open: openDetails.has(ids.advanced) },
      h('summary', {}, t('download-advanced')),
      plain,
      h('p', {}, advanced.text),
      h('pre', { id: ids.command }, advanced.command)),
  ].flat().filter(Boolean);
}

// What each help section was last drawn with, to draw it again in a new language.
const drawn = new WeakMap();

// Fills `section` for the customer on `platform`: their system's steps, then the other
// system's behind "Using … instead?". `available` as `downloadsAvailable` answers (or {});
// `session` the session number (the download's name). Called again when the token changes;
// a language change draws it again by itself. Open folds stay open.
export function renderAgentHelp(section, { platform, available, server, token, session }) {
  const args = { platform, available, server, token, session };
  if (!drawn.has(section)) {
    const stop = onLanguageChange(() => {
      if (section.isConnected) renderAgentHelp(section, drawn.get(section));
      else stop(); // the page was rebuilt without this section
    });
  }
  drawn.set(section, args);
  const openDetails = new Set([...section.querySelectorAll('details[open]')].map((d) => d.id));
  const [mine, other] = offerOrder(platform).map((os) => instructions(os, { available: available[os], server, token, session }));
  replace(section,
    h('h2', {}, t('download-heading')),
    steps(mine, openDetails),
    h('details', { id: 'agent-other', open: openDetails.has('agent-other') },
      h('summary', {}, t('download-other-system', { system: AGENTS[other.os].name })),
      steps(other, openDetails)));
}
