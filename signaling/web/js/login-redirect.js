// On a page that needs a login: go to the login page, then come back. The login page checks
// `next` (login.js `safeNext`) before following it.
location.replace('/login?next=' + encodeURIComponent(location.pathname + location.search));
