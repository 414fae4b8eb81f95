// Browsers give screen capture, the microphone and the camera only to secure pages
// (HTTPS, or this machine's own address): on any other plain-HTTP address the API is
// simply missing. Say why, instead of failing with "undefined is not a function".

import { t } from './i18n.js';

// The reason `feature` ('screen' or 'call') cannot work on this page, or null when it can.
// `page` is what the browser says about it; the defaults read this window.
export function insecureReason(feature, api, page = {
  secure: globalThis.isSecureContext,
  available: Boolean(globalThis.navigator?.mediaDevices?.[api]),
  host: globalThis.location?.host,
}) {
  if (page.secure && page.available) return null;
  if (!page.secure) return t('secure-needs-https', { feature, host: String(page.host ?? '') });
  return t('secure-not-offered', { feature });
}
