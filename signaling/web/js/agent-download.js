// The customer's "share your screen" help: the agent for their system offered first, the
// other one a click away, each with the command that attaches it to this session.

import { h, replace } from './dom.js';

// The agents the server offers, by system. `available` comes from asking the server
// (`downloadsAvailable`): false when it said the download is not set up.
export const AGENTS = {
  linux: {
    name: 'Linux',
    href: '/download/tandem-agent',
    file: 'tandem-agent',
    where: 'run this in a terminal',
    command: (server, token) => `chmod +x tandem-agent && ./tandem-agent attach --server ${server} --token ${token}`,
  },
  windows: {
    name: 'Windows',
    href: '/download/tandem-agent.exe',
    file: 'tandem-agent.exe',
    where: 'run this in a Command Prompt',
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

const ON_THE_COMPUTER = ' on the computer you need help with. It asks you before anything is shared:';

// What to show for one system, as data: the download (or why there is none) and the command.
export function instructions(os, { available, server, token }) {
  const agent = AGENTS[os];
  return {
    os,
    download: available === false ? null : { href: agent.href, file: agent.file },
    text: available === false
      ? `The Tandem agent for ${agent.name} is not set up on this server: ask your support rep for ${agent.file}, then ${agent.where}${ON_THE_COMPUTER}`
      : ` (${agent.name}), then ${agent.where}${ON_THE_COMPUTER}`,
    command: agent.command(server, token),
  };
}

// The element ids per system; the Linux ones are what the page has always had.
const IDS = {
  linux: { download: 'agent-download', command: 'agent-command' },
  windows: { download: 'agent-download-windows', command: 'agent-command-windows' },
};

function steps({ os, download, text, command }) {
  const link = download
    ? h('a', { href: download.href, download: download.file, id: IDS[os].download }, 'Download the Tandem agent')
    : null;
  return [
    h('p', { dataset: { os } }, link, text),
    h('pre', { id: IDS[os].command }, command),
  ];
}

// Fills `section` for the customer on `platform`: their system's steps, then the other
// system's behind "Using … instead?". `available` as `downloadsAvailable` answers (or {}).
export function renderAgentHelp(section, { platform, available, server, token }) {
  const [mine, other] = offerOrder(platform).map((os) => instructions(os, { available: available[os], server, token }));
  const details = section.querySelector('details');
  replace(section,
    h('h2', {}, 'Share your screen with the support rep'),
    steps(mine),
    h('details', { id: 'agent-other', open: details?.open || false },
      h('summary', {}, `Using ${AGENTS[other.os].name} instead?`),
      steps(other)));
}
