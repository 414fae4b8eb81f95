// On a page that needs a login: go to the login page, then come back.
location.replace('/login?next=' + encodeURIComponent(location.pathname + location.search));
