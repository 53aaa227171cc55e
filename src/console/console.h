/* The web console: pages to see and operate an app's webhooks, served by hookline at /console.
 *
 * Everything it needs is compiled in (api/assets.h): plain HTML, CSS and JavaScript modules, no
 * library, no CDN. Its pages call the API under /api/v1/appuid/{appUid} with a session cookie
 * (api/session.h) that this module hands out in exchange for a portal link (POST /portal) or an
 * API key. Every answer here carries a strict Content-Security-Policy (scripts and styles from
 * this origin only: no inline script, no eval) and refuses to be framed.
 *
 * Paths (after /console):
 *   /              the page (index.html); /console without the slash redirects here
 *   /<asset>       a file of assets/ ("js/app.js", "style.css")
 *   /session       GET: who is signed in ({"signedIn": false} when nobody);
 *                  POST {"token"} or {"apiKey", "readOnly"?}: signs in (sets the cookie);
 *                  DELETE: signs out. POST and DELETE need X-Hookline-Console: 1.
 */
#ifndef HL_CONSOLE_H
#define HL_CONSOLE_H

#include "api/http.h"

/* Answers a request under /console (the router's hl_api_hooks.console). */
void hl_console_serve(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);

#endif
