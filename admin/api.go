package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// caller is who an API request acts for.
type caller struct {
	// admin may see and end the sessions of the sites in sites.
	admin bool
	// auditor may see what admin may, and end nothing but the caller's
	// own sessions (under /me). admin wins when both are set.
	auditor bool
	// sites is the admin's or auditor's reach, as web.Viewer.Sites: nil
	// is every site,
	// a non-nil empty slice none. It never limits the caller's own
	// sessions.
	sites []string
	// actor is recorded on the events the request causes: the viewer's
	// email, or "system" on Caddy's admin endpoint.
	actor string
	// self is the caller's own session; nil on Caddy's admin endpoint,
	// which has no /me.
	self *session.Session
}

// reaches reports whether c's admin or auditor rights cover site: whether
// c may see its sessions and events (ending them takes admin, which the
// routes check first).
func (c caller) reaches(site string) bool {
	return (c.admin || c.auditor) && (c.sites == nil || slices.Contains(c.sites, site))
}

// readOnly reports whether c may see but not end: an auditor.
func (c caller) readOnly() bool {
	return c.auditor && !c.admin
}

// within is the Sites value of an admin listing whose explicit site filter
// is site: c's reach, or none when site lies outside it, so that asking for
// a site beyond one's reach gives an empty list rather than an error or
// everything.
func (c caller) within(site string) []string {
	if c.sites != nil && site != "" && !slices.Contains(c.sites, site) {
		return []string{}
	}
	return c.sites
}

// api is the JSON API, shared by the site (New) and Caddy's admin endpoint
// (NewAPI); only the caller and the path root differ.
type api struct {
	b Backend
}

// serve routes a request whose path below the API root is segs (already
// unescaped, so a subject may contain "/" when sent as %2F). The order of
// checks matters: route, then method, then permission, then the id, so
// that a non-admin learns nothing about which ids exist. An auditor is
// refused every state-changing request outside /me before any route: one
// rule for every route, present or future, rather than one per route.
func (a *api) serve(w http.ResponseWriter, r *http.Request, c caller, segs []string) {
	if c.readOnly() && !safeMethod(r.Method) && (len(segs) == 0 || segs[0] != "me") {
		writeError(w, http.StatusForbidden, codeForbidden, "auditors may read but not end sessions")
		return
	}
	switch {
	case match(segs, "sessions"):
		if a.method(w, r, "GET") && a.adminOnly(w, c) {
			a.listSessions(w, r, c, "")
		}
	case match(segs, "sessions", "*"):
		if a.method(w, r, "GET", "DELETE") && a.adminOnly(w, c) {
			a.oneSession(w, r, c, segs[1], false)
		}
	case match(segs, "users"):
		if a.method(w, r, "GET") && a.adminOnly(w, c) {
			a.listUsers(w, r, c)
		}
	case match(segs, "users", "*", "sessions"):
		if !a.method(w, r, "GET", "DELETE") || !a.adminOnly(w, c) {
			return
		}
		if r.Method == http.MethodDelete {
			a.endUser(w, r, c, segs[1])
			return
		}
		a.userSessions(w, r, c, segs[1])
	case match(segs, "events"):
		if a.method(w, r, "GET") && a.adminOnly(w, c) {
			a.listEvents(w, r, c)
		}
	case match(segs, "events.csv"):
		if a.method(w, r, "GET") && a.adminOnly(w, c) {
			a.eventsCSV(w, r, c)
		}
	case match(segs, "stats"):
		if a.method(w, r, "GET") && a.adminOnly(w, c) {
			a.stats(w, r, c)
		}
	case match(segs, "history"):
		if a.method(w, r, "GET") && a.adminOnly(w, c) {
			a.listHistory(w, r, c, false)
		}
	case match(segs, "history.csv"):
		if a.method(w, r, "GET") && a.adminOnly(w, c) {
			a.historyCSV(w, r, c)
		}
	case c.self != nil && match(segs, "me", "history"):
		if a.method(w, r, "GET") {
			a.listHistory(w, r, c, true)
		}
	case c.self != nil && match(segs, "me", "sessions"):
		if !a.method(w, r, "GET", "DELETE") {
			return
		}
		if r.Method == http.MethodDelete {
			a.endOthers(w, r, c)
			return
		}
		a.mySessions(w, r, c)
	case c.self != nil && match(segs, "me", "sessions", "*"):
		if a.method(w, r, "GET", "DELETE") {
			a.oneSession(w, r, c, segs[2], true)
		}
	default:
		writeError(w, http.StatusNotFound, codeNotFound, "")
	}
}

// match reports whether segs is pattern, where "*" is any non-empty
// segment.
func match(segs []string, pattern ...string) bool {
	if len(segs) != len(pattern) {
		return false
	}
	for i, p := range pattern {
		if p == "*" && segs[i] == "" || p != "*" && p != segs[i] {
			return false
		}
	}
	return true
}

func (a *api) method(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for _, m := range allowed {
		if r.Method == m || m == "GET" && r.Method == http.MethodHead {
			return true
		}
	}
	allow := strings.Join(allowed, ", ")
	if strings.Contains(allow, "GET") {
		allow += ", HEAD"
	}
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, codeMethod, "")
	return false
}

// adminOnly lets admins and auditors through; serve has already refused
// auditors what they may not do.
func (a *api) adminOnly(w http.ResponseWriter, c caller) bool {
	if !c.admin && !c.auditor {
		writeError(w, http.StatusForbidden, codeForbidden, "")
		return false
	}
	return true
}

// fail answers err: input problems as 400, a missing session as 404, an
// unreachable store as 503 (the client should retry, not give up), anything
// else as 500 without details.
func (a *api) fail(w http.ResponseWriter, err error) {
	switch {
	case isBadRequest(err):
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
	case errors.Is(err, session.ErrNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, "")
	case errors.Is(err, session.ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "")
	default:
		reportError(a.b, err)
		writeError(w, http.StatusInternalServerError, codeInternal, "")
	}
}

func reportError(b Backend, err error) {
	if rep, ok := b.(ErrorReporter); ok {
		rep.ReportError(err)
	}
}

// listSessions lists the sessions in c's reach; user, when set, is a
// known subject taken from the path and overrides the user filter.
func (a *api) listSessions(w http.ResponseWriter, r *http.Request, c caller, user string) {
	q, err := sessionQuery(r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	if user != "" {
		q.User = user
	} else if q.User, err = subjectOf(r.Context(), a.b, q.User); err != nil {
		a.fail(w, err)
		return
	}
	page, err := listInReach(r.Context(), a.b, c, q)
	if err != nil {
		a.fail(w, fmt.Errorf("listing sessions: %w", err))
		return
	}
	a.writeSessions(w, page, nil)
}

// userSessions is GET /users/{user}/sessions: unlike the user filter of
// /sessions, it names one user, so an unknown one is a 404.
func (a *api) userSessions(w http.ResponseWriter, r *http.Request, c caller, user string) {
	sub, err := knownUser(r.Context(), a.b, c, user)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.listSessions(w, r, c, sub)
}

// listInReach returns one page of q limited to c's reach.
func listInReach(ctx context.Context, b Backend, c caller, q session.Query) (session.Page, error) {
	q.Sites = c.within(q.Site)
	if q.Sites != nil && len(q.Sites) == 0 {
		return session.Page{}, nil
	}
	page, err := b.ListSessions(ctx, q)
	if err != nil {
		return page, err
	}
	// The store filters by site; checking again costs nothing and
	// guards the one thing that must never happen.
	page.Items = slices.DeleteFunc(page.Items, func(s *session.Session) bool { return !c.reaches(s.Site) })
	return page, nil
}

func (a *api) writeSessions(w http.ResponseWriter, page session.Page, self *session.Session) {
	now := a.b.Now()
	out := list[sessionJSON]{Items: make([]sessionJSON, 0, len(page.Items)), NextCursor: page.Next}
	for _, s := range page.Items {
		if over(s, now) {
			continue
		}
		j := toSessionJSON(s, now)
		if self != nil {
			cur := s.ID == self.ID
			j.Current = &cur
		}
		out.Items = append(out.Items, j)
	}
	writeJSON(w, http.StatusOK, out)
}

// over reports whether s has ended by time without being swept yet.
// Stores keep such sessions readable for a while so that the sweep can
// record why they ended; to people they are already gone, so listings
// leave them out (a page may then be shorter than the limit).
func over(s *session.Session, now time.Time) bool {
	return s.Expiry(now, 0) != ""
}

// subjectOf turns a user given by a person into the subject sessions are
// indexed by. Text with an "@" is first looked up as a verified email,
// exactly (Backend.UserByEmail), because people think in emails; when no
// verified email matches, it is taken as a subject, which is exact too.
// It never searches: a search's first page may miss the user (issue 6,
// item 6), and an unverified email names no one.
func subjectOf(ctx context.Context, b Backend, user string) (string, error) {
	if !strings.Contains(user, "@") {
		return user, nil
	}
	sub, err := b.UserByEmail(ctx, user)
	switch {
	case err == nil:
		return sub, nil
	case errors.Is(err, session.ErrNotFound):
		return user, nil
	default:
		return "", fmt.Errorf("looking up user %q: %w", user, err)
	}
}

// knownUser resolves user (subjectOf) for a request that names one user,
// and answers session.ErrNotFound when c knows nothing of them, so that
// such a request is a 404 rather than a success that did nothing. An admin
// of every site knows a verified email, a subject with a session and a
// subject with a user summary; an admin limited to some sites knows only
// users with a session there: the rest of the store is not theirs to
// learn about.
func knownUser(ctx context.Context, b Backend, c caller, user string) (string, error) {
	if user == "" {
		return "", session.ErrNotFound
	}
	sub, err := subjectOf(ctx, b, user)
	if err != nil {
		return "", err
	}
	if c.sites == nil && sub != user {
		return sub, nil
	}
	found := false
	err = eachSession(ctx, b, session.Query{User: sub, Sites: c.sites, Limit: 1}, func(s *session.Session) bool {
		found = s.User == sub && c.reaches(s.Site)
		return !found
	})
	if err != nil {
		return "", fmt.Errorf("looking up sessions of %q: %w", sub, err)
	}
	if found {
		return sub, nil
	}
	if c.sites != nil {
		return "", session.ErrNotFound
	}
	if found, err = hasSummary(ctx, b, sub); err != nil {
		return "", err
	}
	if !found {
		return "", session.ErrNotFound
	}
	return sub, nil
}

// hasSummary reports whether the store keeps a user summary of subject
// sub. Users only searches by prefix, so it walks every page of the
// prefix (a page may be empty with a cursor) to the exact subject.
func hasSummary(ctx context.Context, b Backend, sub string) (bool, error) {
	q := session.UserQuery{Prefix: sub, Limit: activity.MaxLimit}
	for range maxPages {
		page, err := b.Users(ctx, q)
		if err != nil {
			return false, fmt.Errorf("looking up user %q: %w", sub, err)
		}
		for _, u := range page.Items {
			if u.User == sub {
				return true, nil
			}
		}
		if page.Next == "" || page.Next == q.Cursor {
			break
		}
		q.Cursor = page.Next
	}
	return false, nil
}

// maxPages bounds every walk over a listing against a store that keeps
// handing out cursors: 100 pages of 1000 is far beyond any real user.
const maxPages = 100

// eachSession calls fn with every session matching q, page by page, until
// fn returns false or the listing ends.
func eachSession(ctx context.Context, b Backend, q session.Query, fn func(*session.Session) bool) error {
	for range maxPages {
		page, err := b.ListSessions(ctx, q)
		if err != nil {
			return err
		}
		for _, s := range page.Items {
			if !fn(s) {
				return nil
			}
		}
		if page.Next == "" || page.Next == q.Cursor {
			return nil
		}
		q.Cursor = page.Next
	}
	return nil
}

// oneSession reads or ends a session. With mine, only the caller's own
// sessions exist, otherwise only those in the caller's reach: any other id
// answers 404, exactly as a wrong one does.
func (a *api) oneSession(w http.ResponseWriter, r *http.Request, c caller, id string, mine bool) {
	s, err := sessionFor(r.Context(), a.b, c, id, mine)
	if err != nil {
		a.fail(w, err)
		return
	}
	if r.Method != http.MethodDelete {
		j := toSessionJSON(s, a.b.Now())
		if mine {
			cur := s.ID == c.self.ID
			j.Current = &cur
		}
		writeJSON(w, http.StatusOK, j)
		return
	}
	if _, err := a.b.End(r.Context(), id, session.EndRevoked, c.actor, ""); err != nil {
		a.fail(w, fmt.Errorf("ending session: %w", err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// sessionFor loads session id as c may see it: with mine only c's own
// sessions exist, otherwise only those in c's reach. Any other is
// session.ErrNotFound, exactly like an id that never existed, so that no
// one learns which ids exist beyond what they may see.
func sessionFor(ctx context.Context, b Backend, c caller, id string, mine bool) (*session.Session, error) {
	if !session.ValidID(id) {
		return nil, session.ErrNotFound
	}
	s, err := b.GetSession(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("loading session: %w", err)
	}
	if mine && !owns(c.self, s) || !mine && !c.reaches(s.Site) {
		return nil, session.ErrNotFound
	}
	return s, nil
}

func (a *api) listUsers(w http.ResponseWriter, r *http.Request, c caller) {
	q, err := userQuery(r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	page, err := usersInReach(r.Context(), a.b, c, q)
	if err != nil {
		a.fail(w, fmt.Errorf("listing users: %w", err))
		return
	}
	out := list[userJSON]{Items: make([]userJSON, 0, len(page.Items)), NextCursor: page.Next}
	for _, u := range page.Items {
		out.Items = append(out.Items, toUserJSON(u))
	}
	writeJSON(w, http.StatusOK, out)
}

// usersInReach returns one page of user summaries as c may see them. An
// admin of every site gets the store's summaries. For an admin limited to
// some sites, summaries cover every site, so each user on the page is
// described by their sessions in reach instead (one listing per user,
// bounded by the page size): users without one are left out (a page may
// then be shorter than the limit, or empty with a cursor), and the last
// sign-out, which the store keeps for all sites together, is unknown.
func usersInReach(ctx context.Context, b Backend, c caller, q session.UserQuery) (session.UserPage, error) {
	if c.sites != nil && len(c.sites) == 0 {
		return session.UserPage{}, nil
	}
	page, err := b.Users(ctx, q)
	if err != nil || c.sites == nil {
		return page, err
	}
	now := b.Now()
	out := session.UserPage{Next: page.Next}
	for _, u := range page.Items {
		in := session.User{User: u.User, Email: u.Email, Status: "active"}
		var lastAccess time.Time
		err := eachSession(ctx, b, session.Query{User: u.User, Sites: c.sites, Limit: activity.MaxLimit}, func(s *session.Session) bool {
			if s.User != u.User || !c.reaches(s.Site) || over(s, now) {
				return true
			}
			in.ActiveSessions++
			if s.CreatedAt.After(in.LastLogin) {
				in.LastLogin = s.CreatedAt
			}
			if !s.LastAccess.Before(lastAccess) {
				lastAccess, in.LastIP = s.LastAccess, s.LastIP
			}
			return true
		})
		if err != nil {
			return session.UserPage{}, fmt.Errorf("listing sessions of %q: %w", u.User, err)
		}
		if in.ActiveSessions > 0 {
			out.Items = append(out.Items, in)
		}
	}
	return out, nil
}

func (a *api) listEvents(w http.ResponseWriter, r *http.Request, c caller) {
	f, err := eventFilter(r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	page, err := eventsInReach(r.Context(), a.b, c, f)
	if err != nil {
		a.fail(w, fmt.Errorf("querying events: %w", err))
		return
	}
	out := list[activity.Event]{Items: make([]activity.Event, 0, len(page.Items)), NextCursor: page.Next}
	for i := range page.Items {
		out.Items = append(out.Items, eventOut(page.Items[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// eventsInReach returns one page of events matching f in c's reach.
func eventsInReach(ctx context.Context, b Backend, c caller, f activity.Filter) (activity.Page, error) {
	f.Sites = c.within(f.Site)
	if f.Sites != nil && len(f.Sites) == 0 {
		return activity.Page{}, nil
	}
	page, err := b.Events(ctx, f)
	if err != nil {
		return page, err
	}
	// As in listInReach: the store filters, this only guards.
	page.Items = slices.DeleteFunc(page.Items, func(e activity.Event) bool { return !c.reaches(e.Site) })
	return page, nil
}

func (a *api) mySessions(w http.ResponseWriter, r *http.Request, c caller) {
	q, err := sessionQuery(r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	// Only paging and order apply: the user is always the caller.
	q = session.Query{User: c.self.User, Sort: q.Sort, Cursor: q.Cursor, Limit: q.Limit}
	page, err := a.b.ListSessions(r.Context(), q)
	if err != nil {
		a.fail(w, fmt.Errorf("listing own sessions: %w", err))
		return
	}
	page.Items = slices.DeleteFunc(page.Items, func(s *session.Session) bool { return !owns(c.self, s) })
	a.writeSessions(w, page, c.self)
}

// endOthers is DELETE /me/sessions. It insists on others=true: a bare
// DELETE of the collection reads as "sign me out everywhere", which is
// what /logout is for, and guessing wrong would cut off the caller.
func (a *api) endOthers(w http.ResponseWriter, r *http.Request, c caller) {
	if r.URL.Query().Get("others") != "true" {
		a.fail(w, badf("only others=true is supported; use %s to end this session", "logout"))
		return
	}
	if _, err := endAll(r.Context(), a.b, c.self.User, c.self.IssuerKey, c.self.ID, session.EndOthers, c.actor, nil); err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// endUser is DELETE /users/{user}/sessions: it ends the user's sessions
// in c's reach. An unknown user is a 404, never a 204 that ended nothing.
func (a *api) endUser(w http.ResponseWriter, r *http.Request, c caller, user string) {
	sub, err := knownUser(r.Context(), a.b, c, user)
	if err != nil {
		a.fail(w, err)
		return
	}
	if _, err := endAll(r.Context(), a.b, sub, "", "", session.EndRevoked, c.actor, c.sites); err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// owns reports whether s is one of self's own sessions: the same subject
// at the same provider (subjects are unique per issuer only: another
// provider's user of the same subject is someone else). Sessions from
// before issuers were recorded count for every issuer, as on the request
// path.
func owns(self, s *session.Session) bool {
	return s.User == self.User && sameIssuer(self.IssuerKey, s.IssuerKey)
}

// sameIssuer compares issuer keys; "" matches any (a session from before
// issuers were recorded, or no restriction).
func sameIssuer(a, b string) bool { return a == "" || b == "" || a == b }

// endAll ends every session of user (at issuer; "": any) on sites (nil:
// every site) except
// keep, for reason, and returns how many it ended. It collects the ids
// before ending any, because ending sessions while walking the list could
// make a cursor skip some.
func endAll(ctx context.Context, b Backend, user, issuer, keep, reason, actor string, sites []string) (int, error) {
	if user == "" {
		return 0, badf("no user given")
	}
	if sites != nil && len(sites) == 0 {
		return 0, nil
	}
	var ids []string
	now := b.Now()
	err := eachSession(ctx, b, session.Query{User: user, Sites: sites, Limit: activity.MaxLimit}, func(s *session.Session) bool {
		// The store filters by user and site; checking again costs
		// nothing and guards the one thing that must never happen.
		// An expired session is left to the sweep, which records the
		// real reason it ended.
		if s.User == user && sameIssuer(issuer, s.IssuerKey) && (sites == nil || slices.Contains(sites, s.Site)) && s.ID != keep && !over(s, now) {
			ids = append(ids, s.ID)
		}
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("listing sessions of %q: %w", user, err)
	}
	n := 0
	for _, id := range ids {
		_, err := b.End(ctx, id, reason, actor, "")
		switch {
		case errors.Is(err, session.ErrNotFound):
			// Ended meanwhile by someone else, who recorded it.
		case err != nil:
			return n, fmt.Errorf("ending session: %w", err)
		default:
			n++
		}
	}
	return n, nil
}

// NewAPI returns the JSON API for Caddy's admin endpoint, rooted at base
// (such as "/gatehouse"): base/sessions, base/sessions/{id},
// base/users, base/users/{user}/sessions, base/events, base/events.csv,
// base/stats and base/history, with the same
// semantics as the site API. It acts as an administrator of every site
// with actor "system" and does no CSRF checks: Caddy's admin endpoint enforces its own
// origin rules and is meant for scripts and the CLI.
func NewAPI(b Backend, base string) http.Handler {
	a := &api{b: b}
	base = strings.TrimSuffix(base, "/")
	root := (&url.URL{Path: base}).EscapedPath()
	c := caller{admin: true, actor: activity.ActorSystem}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		segs, ok := below(r.URL.EscapedPath(), root)
		if !ok {
			writeError(w, http.StatusNotFound, codeNotFound, "")
			return
		}
		a.serve(w, r, c, segs)
	})
}

// below splits the part of an escaped path below root into unescaped
// segments: "/root/a/b%2Fc" gives ["a", "b/c"], "/root/" gives [""] and
// "/root" nil. It reports false when path is not below root or a segment
// does not unescape.
func below(path, root string) ([]string, bool) {
	rest, ok := strings.CutPrefix(path, root)
	if !ok || rest != "" && rest[0] != '/' {
		return nil, false
	}
	if rest == "" {
		return nil, true
	}
	parts := strings.Split(rest[1:], "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}
