// Package admin serves gatehouse's own pages and JSON API: the "my
// sessions" page every signed-in user gets, the admin page (sessions,
// users, activity) and the JSON API behind both, as plain http.Handlers.
// It knows nothing of Caddy; caddymodule mounts New on every protected site
// (through gateway.Config.Admin) and NewAPI on Caddy's admin endpoint.
//
// # Site routes
//
// New serves everything under the site's path prefix (Viewer.Prefix,
// default /.gatehouse) that is not one of the gateway's own endpoints. The
// gateway has already signed the user in and put a *web.Viewer in the
// request context.
//
// JSON API (admins and auditors, except under /api/me, which is every
// signed-in user's; auditors get 403 for every DELETE outside /api/me):
//
//	GET    {prefix}/api/sessions?user=&ip=&country=&site=&sort=&cursor=&limit=
//	GET    {prefix}/api/sessions/{id}
//	DELETE {prefix}/api/sessions/{id}
//	GET    {prefix}/api/users?prefix=&cursor=&limit=
//	GET    {prefix}/api/users/{user}/sessions?cursor=&limit=
//	DELETE {prefix}/api/users/{user}/sessions
//	GET    {prefix}/api/events?from=&to=&user=&ip=&type=&site=&cursor=&limit=
//	GET    {prefix}/api/events.csv?from=&to=&user=&ip=&type=&site=&mask=
//	GET    {prefix}/api/stats?from=&to=&bucket=&site=&user=&ip=
//	GET    {prefix}/api/history?user=&from=&to=&site=&cursor=&limit=
//	GET    {prefix}/api/history.csv?user=&from=&to=&site=&mask=
//	GET    {prefix}/api/me/sessions
//	GET    {prefix}/api/me/history?from=&to=&site=&cursor=&limit=
//	GET    {prefix}/api/me/sessions/{id}
//	DELETE {prefix}/api/me/sessions/{id}
//	DELETE {prefix}/api/me/sessions?others=true
//
// Pages, and the form actions they post to. Every form action answers 303
// See Other back to a page (POST-redirect-GET), with the outcome as a flash
// code in the query (flash=revoked|gone|others|user, n=count): the page
// turns the code into a fixed sentence, so a crafted link cannot put words
// of its own on the page.
//
//	GET  {prefix}/                          my sessions and login history
//	POST {prefix}/sessions/{id}/revoke      sign out one of my other sessions
//	POST {prefix}/sessions/revoke-others    sign out all my other sessions
//	GET  {prefix}/admin/                    Sessions tab (filters, sort, pages)
//	GET  {prefix}/admin/users               Users tab
//	GET  {prefix}/admin/activity            Activity tab
//	GET  {prefix}/admin/alerts              Alerts tab: anomalies, newest first, with evidence
//	GET  {prefix}/admin/history             Login history tab (one row per session; ?user= from the Users tab)
//	POST {prefix}/admin/sessions/{id}/revoke
//	POST {prefix}/admin/users/{user}/revoke  every session of the user
//	GET  {prefix}/assets/{name}             embedded CSS and JavaScript
//
// The sign-out button posts to the gateway's own {prefix}/logout.
//
// # Auditors
//
// An auditor (Viewer.Auditor, from a site's auditor_groups and
// auditor_emails) sees every page and GET an admin of the same sites sees,
// with the same reach, and ends nothing: the admin pages show no revoke
// controls and say "Read-only", and every state-changing API request
// outside /api/me and every form under /admin/ is a 403, refused before
// any id is looked up. Their own sessions stay theirs to end from "my
// sessions". A viewer who is both is an admin.
//
// # Reach
//
// Admin rights, and the sites they cover (Viewer.Sites), come from the
// gateway. Everything an admin lists is limited to those sites (a site
// filter beyond them gives an empty list); a session beyond them answers
// exactly as an id that does not exist; ending all of a user ends only the
// sessions within; the Users tab shows only users with a session within,
// described by those sessions (last sign-out unknown). The viewer's own
// sessions are never limited.
//
// A {user} in a path, or the user filter, is a verified email (exact,
// case-insensitive) or else an exact subject. A {user} nobody knows (for an
// admin of some sites: with no session there) is a 404; the filter of an
// unknown user is an empty list.
//
// # CSRF
//
// State-changing requests (anything but GET and HEAD) must carry either
// X-Requested-With: XMLHttpRequest (API only: a cross-site page cannot
// send it without a CORS preflight we never grant) or the session's token
// (Viewer.CSRF) in the X-Gatehouse-CSRF header or, for forms, the csrf
// field. When an Origin header is present it must be the site's own, and a
// browser's Sec-Fetch-Site: cross-site is refused outright.
//
// # Exports and stats
//
// events.csv streams every event the filters of /api/events match (limit
// is ignored), within the caller's reach, newest first, as CSV whose
// columns begin as SPEC fixes them (activity.CSVColumns); cells a
// spreadsheet would run as a formula get a leading quote. mask=true
// replaces users and emails by a keyed hash and cuts addresses to /24 or
// /48 (Masker). Every export first writes an admin_export event with the
// actor and, in detail, the filter. stats counts login_succeeded,
// login_failed, access_denied and anomaly events per bucket (5m to 1d,
// default 1h; from defaults to a week before to, to to now; at most
// activity.MaxBuckets buckets), what the Activity tab's chart draws.
//
// # Caddy admin endpoint
//
// NewAPI serves the same JSON semantics (without /me) under a base path,
// acting as an administrator of every site with actor "system" and no CSRF checks:
// Caddy's admin endpoint checks origins itself.
//
// # JSON
//
// Lists are {"items":[...],"next_cursor":"..."} with next_cursor empty on
// the last page. Times are RFC 3339 in UTC; a time that never happened
// (a user's last_logout while never signed out) is null. Session items
// carry the stored fields (never the sealed tokens) plus inactive_for and
// duration in whole seconds, and in /me a current flag. Login history
// items have the SPEC's fields (HistoryColumns), with end_time "" while
// the session lasts. Errors are
// {"error":"code","message":"..."}: bad_request (400), forbidden (403),
// not_found (404), method_not_allowed (405), unavailable (503 with
// Retry-After), internal_error (500).
package admin
