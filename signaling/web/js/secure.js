// Browsers give screen capture, the microphone and the camera only to secure pages
// (HTTPS, or this machine's own address): on any other plain-HTTP address the API is
// simply missing. Say why, instead of failing with "undefined is not a function".

// The reason `feature` cannot work on this page, or null when it can. `page` is what the
// browser says about it; the defaults read this window.
export function insecureReason(feature, api, page = {
  secure: globalThis.isSecureContext,
  available: Boolean(globalThis.navigator?.mediaDevices?.[api]),
  host: globalThis.location?.host,
}) {
  if (page.secure && page.available) return null;
  if (!page.secure) {
    return `${feature} needs a secure (HTTPS) connection, and this page was opened over ` +
      `plain HTTP at ${page.host}, so the browser does not offer it. Open this site with ` +
      'https://, or ask whoever runs this Tandem server to set up HTTPS';
  }
  return `${feature} is not offered by this browser`;
}
