package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// caller is who an API request acts for.
type caller struct {
	// admin may see and end every session.
	admin bool
	// actor is recorded on the events the request causes: the viewer's
	// email, or "system" on Caddy's admin endpoint.
	actor string
	// self is the caller's own session; nil on Caddy's admin endpoint,
	// which has no /me.
	self *session.Session
}

// api is the JSON API, shared by the site (New) and Caddy's admin endpoint
// (NewAPI); only the caller and the path root differ.
type api struct {
	b Backend
}

// serve routes a request whose path below the API root is segs (already
// unescaped, so a subject may contain "/" when sent as %2F). The order of
// checks matters: route, then method, then permission, then the id, so
// that a non-admin learns nothing about which ids exist.
func (a *api) serve(w http.ResponseWriter, r *http.Request, c caller, segs []string) {
	switch {
	case match(segs, "sessions"):
		if a.method(w, r, "GET") && a.adminOnly(w, c) {
			a.listSessions(w, r, session.Query{})
		}
	case match(segs, "sessions", "*"):
		if a.method(w, r, "GET", "DELETE") && a.adminOnly(w, c) {
			a.oneSession(w, r, c, segs[1], false)
		}
	case match(segs, "users"):
		if a.method(w, r, "GET") && a.adminOnly(w, c) {
			a.listUsers(w, r)
		}
	case match(segs, "users", "*", "sessions"):
		if !a.method(w, r, "GET", "DELETE") || !a.adminOnly(w, c) {
			return
		}
		if r.Method == http.MethodDelete {
			a.endUser(w, r, c, segs[1])
			return
		}
		a.listSessions(w, r, session.Query{User: segs[1]})
	case match(segs, "events"):
		if a.method(w, r, "GET") && a.adminOnly(w, c) {
			a.listEvents(w, r)
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

func (a *api) adminOnly(w http.ResponseWriter, c caller) bool {
	if !c.admin {
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

// listSessions lists sessions; base fixes filters taken from the path.
func (a *api) listSessions(w http.ResponseWriter, r *http.Request, base session.Query) {
	q, err := sessionQuery(r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	if base.User != "" {
		q.User = base.User
	}
	q.User, err = resolveUser(r.Context(), a.b, q.User)
	if err != nil {
		a.fail(w, err)
		return
	}
	page, err := a.b.ListSessions(r.Context(), q)
	if err != nil {
		a.fail(w, fmt.Errorf("listing sessions: %w", err))
		return
	}
	a.writeSessions(w, page, nil)
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

// resolveUser turns an email into the subject it belongs to, because
// sessions are indexed by subject while people think in emails. Anything
// that is not a known email is taken as a subject.
func resolveUser(ctx context.Context, b Backend, user string) (string, error) {
	if !strings.Contains(user, "@") {
		return user, nil
	}
	page, err := b.Users(ctx, session.UserQuery{Prefix: user, Limit: 20})
	if err != nil {
		return "", fmt.Errorf("looking up user %q: %w", user, err)
	}
	for _, u := range page.Items {
		if u.User == user {
			return user, nil
		}
	}
	for _, u := range page.Items {
		if strings.EqualFold(u.Email, user) {
			return u.User, nil
		}
	}
	return user, nil
}

// oneSession reads or ends a session. With mine, only the caller's own
// sessions exist: any other id answers 404, exactly as a wrong one does.
func (a *api) oneSession(w http.ResponseWriter, r *http.Request, c caller, id string, mine bool) {
	if !session.ValidID(id) {
		a.fail(w, session.ErrNotFound)
		return
	}
	s, err := a.b.GetSession(r.Context(), id)
	if err != nil {
		a.fail(w, fmt.Errorf("loading session: %w", err))
		return
	}
	if mine && s.User != c.self.User {
		a.fail(w, session.ErrNotFound)
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

func (a *api) listUsers(w http.ResponseWriter, r *http.Request) {
	q, err := userQuery(r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	page, err := a.b.Users(r.Context(), q)
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

func (a *api) listEvents(w http.ResponseWriter, r *http.Request) {
	f, err := eventFilter(r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	page, err := a.b.Events(r.Context(), f)
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
	if _, err := endAll(r.Context(), a.b, c.self.User, c.self.ID, session.EndOthers, c.actor); err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) endUser(w http.ResponseWriter, r *http.Request, c caller, user string) {
	user, err := resolveUser(r.Context(), a.b, user)
	if err != nil {
		a.fail(w, err)
		return
	}
	if _, err := endAll(r.Context(), a.b, user, "", session.EndRevoked, c.actor); err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// maxEndPages bounds endAll against a store that keeps handing out
// cursors: 100 pages of 1000 is far beyond any real user.
const maxEndPages = 100

// endAll ends every session of user except keep, for reason, and returns
// how many it ended. It collects the ids before ending any, because ending
// sessions while walking the list could make a cursor skip some.
func endAll(ctx context.Context, b Backend, user, keep, reason, actor string) (int, error) {
	if user == "" {
		return 0, badf("no user given")
	}
	var ids []string
	now := b.Now()
	q := session.Query{User: user, Limit: activity.MaxLimit}
	for range maxEndPages {
		page, err := b.ListSessions(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("listing sessions of %q: %w", user, err)
		}
		for _, s := range page.Items {
			// The store filters by user; checking again costs nothing
			// and guards the one thing that must never happen.
			// An expired session is left to the sweep, which records
			// the real reason it ended.
			if s.User == user && s.ID != keep && !over(s, now) {
				ids = append(ids, s.ID)
			}
		}
		if page.Next == "" || page.Next == q.Cursor {
			break
		}
		q.Cursor = page.Next
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
// base/users, base/users/{user}/sessions and base/events, with the same
// semantics as the site API. It acts as an administrator with actor
// "system" and does no CSRF checks: Caddy's admin endpoint enforces its own
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
