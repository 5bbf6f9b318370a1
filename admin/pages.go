package admin

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages renders the HTML side.
type pages struct {
	b      Backend
	tmpl   map[string]*template.Template
	assets *assets
}

func newPages(b Backend) *pages {
	p := &pages{b: b, tmpl: make(map[string]*template.Template), assets: loadAssets()}
	loc := location(b)
	funcs := template.FuncMap{
		// Pages show times in the configured zone, named (issue 8).
		"abs":  func(t time.Time) string { return absTimeIn(t, loc) },
		"iso":  isoTime,
		"span": span,
		"kind": kindLabel,
	}
	for _, name := range []string{"me", "sessions", "users", "activity", "alerts", "history", "message"} {
		p.tmpl[name] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return p
}

// view is what every page template gets; Data is the page's own part.
type view struct {
	Title  string
	Prefix string
	Me     *session.Session
	Admin  bool
	CSRF   string
	// Nav is "me" or "admin"; Tab the admin tab.
	Nav, Tab string
	// Flash is a confirmation, Error a problem with the request.
	Flash, Error string
	// Return is the page's own URL, posted back by forms so that the
	// redirect after them lands where the user was.
	Return string
	CSS    string
	JS     string
	Data   any

	// Admin (above) shows the admin pages, to admins and auditors;
	// Auditor marks them read-only.
	Auditor bool
}

// Historical login types shown on "my sessions": everything that starts or
// ends a session, not the admin-only noise.
var historyTypes = []string{
	activity.LoginSucceeded, activity.LoginFailed, activity.Logout,
	activity.SessionRevoked, activity.RevokedOthers, activity.ExpiredIdle,
	activity.ExpiredLifetime, activity.EndedNewLogin,
}

// historyLen is how many events "my sessions" shows.
const historyLen = 20

// maxOwnSessions bounds what "my sessions" lists; max_sessions keeps real
// users far below it.
const maxOwnSessions = 200

// adminPageSize is the admin tables' page size: enough to scan, small
// enough to render fast.
const adminPageSize = 50

func (p *pages) serve(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string, segs []string) {
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	post := r.Method == http.MethodPost
	switch {
	case match(segs, ""):
		if p.allow(w, r, v, prefix, get, "GET, HEAD") {
			p.me(w, r, v, prefix)
		}
	case match(segs, "sessions", "revoke-others"):
		if p.allow(w, r, v, prefix, post, "POST") {
			p.revokeOthers(w, r, v, prefix)
		}
	case match(segs, "sessions", "*", "revoke"):
		if p.allow(w, r, v, prefix, post, "POST") {
			p.revokeMine(w, r, v, prefix, segs[1])
		}
	case match(segs, "admin"):
		if get {
			http.Redirect(w, r, prefix+"/admin/", http.StatusSeeOther)
			return
		}
		p.notFound(w, r, v, prefix)
	case match(segs, "admin", ""), match(segs, "admin", "users"), match(segs, "admin", "activity"), match(segs, "admin", "alerts"), match(segs, "admin", "history"):
		if !p.allow(w, r, v, prefix, get, "GET, HEAD") || !p.adminOnly(w, r, v, prefix) {
			return
		}
		switch segs[1] {
		case "":
			p.adminSessions(w, r, v, prefix)
		case "users":
			p.adminUsers(w, r, v, prefix)
		case "alerts":
			p.adminAlerts(w, r, v, prefix)
		case "history":
			p.adminHistory(w, r, v, prefix)
		default:
			p.adminActivity(w, r, v, prefix)
		}
	case match(segs, "admin", "sessions", "*", "revoke"):
		if p.allow(w, r, v, prefix, post, "POST") && p.adminOnly(w, r, v, prefix) {
			p.adminRevoke(w, r, v, prefix, segs[2])
		}
	case match(segs, "admin", "users", "*", "revoke"):
		if p.allow(w, r, v, prefix, post, "POST") && p.adminOnly(w, r, v, prefix) {
			p.adminRevokeUser(w, r, v, prefix, segs[2])
		}
	case match(segs, "assets", "*"):
		if p.allow(w, r, v, prefix, get, "GET, HEAD") {
			p.assets.serve(w, r, segs[1])
		}
	default:
		p.notFound(w, r, v, prefix)
	}
}

func (p *pages) allow(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string, ok bool, allow string) bool {
	if ok {
		return true
	}
	w.Header().Set("Allow", allow)
	p.fail(w, r, v, prefix, http.StatusMethodNotAllowed, "Method not allowed", "This address does not accept that kind of request.")
	return false
}

// adminOnly lets admins through, and auditors when the request only
// reads: every form under /admin/ ends sessions.
func (p *pages) adminOnly(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string) bool {
	if v.Admin || v.Auditor && safeMethod(r.Method) {
		return true
	}
	if v.Auditor {
		p.fail(w, r, v, prefix, http.StatusForbidden, "Read-only access",
			"Auditors can see sessions and activity but not sign anyone out. You can still sign out your own sessions.")
		return false
	}
	p.fail(w, r, v, prefix, http.StatusForbidden, "Administrators only",
		"This page is for administrators. You can still see and sign out your own sessions.")
	return false
}

// newView fills the parts every page shares.
func (p *pages) newView(r *http.Request, v *web.Viewer, prefix, title string) *view {
	vw := &view{
		Title:  title,
		Prefix: prefix,
		Me:     v.Session,
		Admin:  v.Admin || v.Auditor,
		CSRF:   v.CSRF,
		Return: withoutFlash(r.URL),
		CSS:    p.assets.url(prefix, "app.css"),
		JS:     p.assets.url(prefix, "app.js"),
		Flash:  flashMessage(r.URL.Query()),
	}
	vw.Auditor = v.Auditor && !v.Admin
	return vw
}

// render writes a page. It renders into a buffer first so that a template
// error becomes a clean 500 instead of half a page.
func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, name string, vw *view) {
	var buf bytes.Buffer
	if err := p.tmpl[name].Execute(&buf, vw); err != nil {
		reportError(p.b, fmt.Errorf("rendering %s page: %w", name, err))
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("internal error\n")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	setPageHeaders(w.Header())
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// pageCSP allows nothing but our own embedded script and style sheet.
// There is deliberately no form-action: the sign-out form's redirect goes
// on to the identity provider, whose origin this package does not know,
// and browsers apply form-action to redirects too.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"

func setPageHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// Filter values (user names, IPs) travel in page URLs.
	h.Set("Referrer-Policy", "same-origin")
}

// fail answers with a message page, or JSON for clients that do not want
// HTML.
func (p *pages) fail(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string, status int, title, msg string) {
	if !web.Navigation(r) {
		code := map[int]string{
			http.StatusBadRequest:          codeBadRequest,
			http.StatusForbidden:           codeForbidden,
			http.StatusNotFound:            codeNotFound,
			http.StatusMethodNotAllowed:    codeMethod,
			http.StatusServiceUnavailable:  codeUnavailable,
			http.StatusInternalServerError: codeInternal,
		}[status]
		writeError(w, status, code, msg)
		return
	}
	vw := p.newView(r, v, prefix, title)
	vw.Flash = ""
	vw.Data = struct{ Message string }{msg}
	p.render(w, r, status, "message", vw)
}

func (p *pages) notFound(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string) {
	p.fail(w, r, v, prefix, http.StatusNotFound, "Page not found", "There is nothing at this address.")
}

// failErr answers a backend error on a page.
func (p *pages) failErr(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string, err error) {
	switch {
	case errors.Is(err, session.ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		p.fail(w, r, v, prefix, http.StatusServiceUnavailable, "Temporarily unavailable",
			"The session store cannot be reached right now. Please try again in a moment.")
	default:
		reportError(p.b, err)
		p.fail(w, r, v, prefix, http.StatusInternalServerError, "Something went wrong",
			"The page could not be loaded. Please try again.")
	}
}

// Flash codes carried in the query after a form; see flashMessage.
const (
	flashRevoked = "revoked"
	flashGone    = "gone"
	flashOthers  = "others"
	flashUser    = "user"
)

// flashMessage turns the flash code in a query into a fixed sentence.
// Only the count comes from the query, as a number, so a crafted link
// cannot make the page say anything else.
func flashMessage(q url.Values) string {
	n, _ := strconv.Atoi(q.Get("n"))
	n = max(n, 0)
	switch q.Get("flash") {
	case flashRevoked:
		return "The session was signed out."
	case flashGone:
		return "That session had already ended."
	case flashOthers:
		if n == 0 {
			return "There were no other sessions to sign out."
		}
		return fmt.Sprintf("Signed out of %s.", plural(n, "other session"))
	case flashUser:
		if n == 0 {
			return "That user had no active sessions."
		}
		return fmt.Sprintf("Signed out %s of that user.", plural(n, "session"))
	}
	return ""
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// withoutFlash is u's path and query without the flash parameters, so
// that a page's forms send the user back to the same view.
func withoutFlash(u *url.URL) string {
	q := u.Query()
	q.Del("flash")
	q.Del("n")
	out := u.EscapedPath()
	if e := q.Encode(); e != "" {
		out += "?" + e
	}
	return out
}

// back redirects after a form (POST-redirect-GET) to ret, which must be one
// of our own pages under base, with the flash code in the query.
func back(w http.ResponseWriter, r *http.Request, base, ret, flash string, n int) {
	u, err := url.Parse(ret)
	if ret == "" || err != nil || web.SafeReturn(ret) != ret ||
		!strings.HasPrefix(u.Path, base) || strings.Contains(u.Path, "/..") {
		u, _ = url.Parse(base)
	}
	q := u.Query()
	q.Set("flash", flash)
	if n >= 0 {
		q.Set("n", strconv.Itoa(n))
	} else {
		q.Del("n")
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// sessionRow is a session as the pages show it.
type sessionRow struct {
	*session.Session
	Current     bool
	DeviceLabel string
	Kind        string
	Location    string
	LastSeen    string
	SignedIn    string
	Inactive    time.Duration
	RevokeURL   string
	UserURL     string
	// Auth is "MFA" or the sign-in method; AuthTitle lists the methods.
	Auth, AuthTitle string
}

func (p *pages) row(s *session.Session, now time.Time, prefix string, current bool, admin bool) sessionRow {
	row := sessionRow{
		Session:     s,
		Current:     current,
		DeviceLabel: deviceLabel(s.Device),
		Kind:        deviceKind(s.Device),
		Location:    place(s.City, s.Region, s.Country),
		LastSeen:    ago(now, s.LastAccess),
		SignedIn:    ago(now, s.CreatedAt),
		Inactive:    max(now.Sub(s.LastAccess), 0),
	}
	row.Auth, row.AuthTitle = authLabel(s.AMR, s.MFA)
	if admin {
		row.RevokeURL = prefix + "/admin/sessions/" + url.PathEscape(s.ID) + "/revoke"
		row.UserURL = prefix + "/admin/?" + url.Values{"user": {s.User}}.Encode()
	} else {
		row.RevokeURL = prefix + "/sessions/" + url.PathEscape(s.ID) + "/revoke"
	}
	return row
}

// eventRow is an event as the pages show it.
type eventRow struct {
	activity.Event
	Label    string
	Tone     string
	Reason   string
	Location string
	When     string
	// Idle is the event's inactivity in words.
	Idle string
}

func eventRows(events []activity.Event, now time.Time) []eventRow {
	rows := make([]eventRow, 0, len(events))
	for _, e := range events {
		rows = append(rows, eventRow{
			Event:    e,
			Label:    eventLabel(e.Type),
			Tone:     eventTone(e.Type),
			Reason:   reasonLabel(e.Reason),
			Location: place(e.City, "", e.Country),
			When:     ago(now, e.Time),
			Idle:     idleText(e.Inactivity),
		})
	}
	return rows
}

// idleText shows an event's inactivity (seconds) the way the tables show
// durations; "" for none.
func idleText(secs int64) string {
	if secs <= 0 {
		return ""
	}
	return span(time.Duration(secs) * time.Second)
}

type meData struct {
	Sessions []sessionRow
	Others   int
	// Logins is the viewer's login history; History their recent
	// failed sign-ins (all their sign-in events when the store keeps no
	// login history).
	Logins    []loginRow
	HasLogins bool // the store keeps a login history
	History   []eventRow
	LogoutURL string
	OthersURL string
}

func (p *pages) me(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string) {
	ctx := r.Context()
	now := p.b.Now()
	own, err := ownSessions(ctx, p.b, v.Session)
	if err != nil {
		p.failErr(w, r, v, prefix, err)
		return
	}
	logins, err := p.ownLogins(r, v, prefix)
	if err != nil {
		p.failErr(w, r, v, prefix, err)
		return
	}
	types := historyTypes
	if logins != nil {
		// The login history shows sign-ins and ends; failures remain.
		types = []string{activity.LoginFailed}
	}
	hist, err := p.b.Events(ctx, activity.Filter{User: v.Session.User, Types: types, Limit: historyLen})
	if err != nil {
		p.failErr(w, r, v, prefix, fmt.Errorf("loading login history: %w", err))
		return
	}
	d := &meData{
		LogoutURL: prefix + "/logout",
		OthersURL: prefix + "/sessions/revoke-others",
		Logins:    logins,
		HasLogins: logins != nil,
		History:   eventRows(hist.Items, now),
	}
	// This device first, even if another was used more recently: it is
	// the one people look for.
	cur := p.row(v.Session, now, prefix, true, false)
	d.Sessions = append(d.Sessions, cur)
	for _, s := range own {
		if over(s, now) {
			continue
		}
		if s.ID == v.Session.ID {
			// The store's copy has the fresher last access.
			d.Sessions[0] = p.row(s, now, prefix, true, false)
			continue
		}
		d.Sessions = append(d.Sessions, p.row(s, now, prefix, false, false))
		d.Others++
	}
	vw := p.newView(r, v, prefix, "My sessions")
	vw.Nav = "me"
	vw.Data = d
	p.render(w, r, http.StatusOK, "me", vw)
}

// ownSessions lists every session of user (bounded by maxOwnSessions).
// They are the viewer's own, so no admin reach applies.
func ownSessions(ctx context.Context, b Backend, self *session.Session) ([]*session.Session, error) {
	var out []*session.Session
	err := eachSession(ctx, b, session.Query{User: self.User, Limit: activity.MaxLimit}, func(s *session.Session) bool {
		if owns(self, s) {
			out = append(out, s)
		}
		return len(out) < maxOwnSessions
	})
	if err != nil {
		return nil, fmt.Errorf("listing own sessions: %w", err)
	}
	return out, nil
}

func (p *pages) revokeMine(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix, id string) {
	err := endOne(r.Context(), p.b, callerFor(v), id, true)
	p.afterRevoke(w, r, v, prefix, prefix+"/", err)
}

func (p *pages) adminRevoke(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix, id string) {
	err := endOne(r.Context(), p.b, callerFor(v), id, false)
	p.afterRevoke(w, r, v, prefix, prefix+"/admin/", err)
}

func (p *pages) afterRevoke(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix, base string, err error) {
	switch {
	case errors.Is(err, session.ErrNotFound):
		back(w, r, base, r.PostForm.Get("return"), flashGone, -1)
	case err != nil:
		p.failErr(w, r, v, prefix, err)
	default:
		back(w, r, base, r.PostForm.Get("return"), flashRevoked, -1)
	}
}

func (p *pages) revokeOthers(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string) {
	n, err := endAll(r.Context(), p.b, v.Session.User, v.Session.IssuerKey, v.Session.ID, session.EndOthers, actorOf(v.Session), nil)
	if err != nil {
		p.failErr(w, r, v, prefix, err)
		return
	}
	back(w, r, prefix+"/", "", flashOthers, n)
}

// adminRevokeUser ends the sessions of user in the viewer's reach. An
// unknown user is a "not found" page, never a confirmation that nothing
// was signed out.
func (p *pages) adminRevokeUser(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix, user string) {
	c := callerFor(v)
	sub, err := knownUser(r.Context(), p.b, c, user)
	if errors.Is(err, session.ErrNotFound) {
		p.fail(w, r, v, prefix, http.StatusNotFound, "Unknown user",
			"There is no user with that name or email, so no one was signed out.")
		return
	}
	if err != nil {
		p.failErr(w, r, v, prefix, err)
		return
	}
	n, err := endAll(r.Context(), p.b, sub, "", "", session.EndRevoked, c.actor, c.sites)
	if err != nil {
		p.failErr(w, r, v, prefix, err)
		return
	}
	back(w, r, prefix+"/admin/", r.PostForm.Get("return"), flashUser, n)
}

// endOne ends one session for c. With mine only c's own sessions count,
// otherwise only those in c's reach: any other id is session.ErrNotFound,
// exactly like one that never existed.
func endOne(ctx context.Context, b Backend, c caller, id string, mine bool) error {
	if _, err := sessionFor(ctx, b, c, id, mine); err != nil {
		return err
	}
	if _, err := b.End(ctx, id, session.EndRevoked, c.actor, ""); err != nil {
		return fmt.Errorf("ending session: %w", err)
	}
	return nil
}

type adminSessionsData struct {
	Filter   session.Query
	UserName string
	Rows     []sessionRow
	// RevokeUserURL is set when the list is one user's.
	RevokeUserURL string
	NextURL       string
	FirstURL      string
	Filtered      bool
}

func (p *pages) adminSessions(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string) {
	vw := p.newView(r, v, prefix, "Sessions")
	vw.Nav, vw.Tab = "admin", "sessions"
	d := &adminSessionsData{}
	vw.Data = d
	qv := r.URL.Query()
	q, err := sessionQuery(qv)
	if err != nil {
		vw.Error = err.Error()
		p.render(w, r, http.StatusBadRequest, "sessions", vw)
		return
	}
	if qv.Get("limit") == "" {
		q.Limit = adminPageSize
	}
	d.Filter = q
	d.Filtered = q.User != "" || q.IPPrefix != "" || q.Country != "" || q.Site != ""
	q.User, err = subjectOf(r.Context(), p.b, q.User)
	if err != nil {
		p.failErr(w, r, v, prefix, err)
		return
	}
	page, err := listInReach(r.Context(), p.b, callerFor(v), q)
	if err != nil {
		p.failErr(w, r, v, prefix, fmt.Errorf("listing sessions: %w", err))
		return
	}
	now := p.b.Now()
	for _, s := range page.Items {
		if over(s, now) {
			continue
		}
		row := p.row(s, now, prefix, s.ID == v.Session.ID, true)
		if !v.Admin {
			// An auditor gets no revoke controls.
			row.RevokeURL = ""
		}
		d.Rows = append(d.Rows, row)
	}
	if q.User != "" {
		if v.Admin {
			d.RevokeUserURL = prefix + "/admin/users/" + url.PathEscape(q.User) + "/revoke"
		}
		d.UserName = d.Filter.User
	}
	d.NextURL, d.FirstURL = pageLinks(r.URL, page.Next)
	p.render(w, r, http.StatusOK, "sessions", vw)
}

// pageLinks builds "Next page" and "First page" links from the current
// URL: the same filters, another cursor.
func pageLinks(u *url.URL, next string) (nextURL, firstURL string) {
	q := u.Query()
	q.Del("flash")
	q.Del("n")
	if next != "" {
		q.Set("cursor", next)
		nextURL = u.EscapedPath() + "?" + q.Encode()
	}
	if u.Query().Get("cursor") != "" {
		q.Del("cursor")
		firstURL = u.EscapedPath()
		if e := q.Encode(); e != "" {
			firstURL += "?" + e
		}
	}
	return nextURL, firstURL
}

type userRow struct {
	session.User
	Status      string
	LastLogin   string
	LastLogout  string
	SessionsURL string
	// HistoryURL opens the user's login history (the row's link).
	HistoryURL string
	RevokeURL  string
}

type adminUsersData struct {
	Search   string
	Rows     []userRow
	NextURL  string
	FirstURL string
}

func (p *pages) adminUsers(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string) {
	vw := p.newView(r, v, prefix, "Users")
	vw.Nav, vw.Tab = "admin", "users"
	d := &adminUsersData{}
	vw.Data = d
	qv := r.URL.Query()
	q, err := userQuery(qv)
	if err != nil {
		vw.Error = err.Error()
		p.render(w, r, http.StatusBadRequest, "users", vw)
		return
	}
	if qv.Get("limit") == "" {
		q.Limit = adminPageSize
	}
	d.Search = q.Prefix
	page, err := usersInReach(r.Context(), p.b, callerFor(v), q)
	if err != nil {
		p.failErr(w, r, v, prefix, fmt.Errorf("listing users: %w", err))
		return
	}
	now := p.b.Now()
	for _, u := range page.Items {
		row := userRow{
			User:        u,
			Status:      userStatus(u),
			LastLogin:   ago(now, u.LastLogin),
			LastLogout:  ago(now, u.LastLogout),
			SessionsURL: prefix + "/admin/?" + url.Values{"user": {u.User}}.Encode(),
			HistoryURL:  historyURL(prefix, u.User),
		}
		if v.Admin {
			// An auditor gets no revoke controls.
			row.RevokeURL = prefix + "/admin/users/" + url.PathEscape(u.User) + "/revoke"
		}
		d.Rows = append(d.Rows, row)
	}
	d.NextURL, d.FirstURL = pageLinks(r.URL, page.Next)
	p.render(w, r, http.StatusOK, "users", vw)
}
