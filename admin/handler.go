package admin

import (
	"crypto/subtle"
	"net/http"
	"net/url"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

// handler serves a site's pages, assets and JSON API.
type handler struct {
	b     Backend
	api   *api
	pages *pages
}

// New returns the handler the gateway mounts under a site's path prefix
// (gateway.Config.Admin). Requests must carry a *web.Viewer in their
// context (web.WithViewer); the routes are listed in the package
// documentation.
func New(b Backend) http.Handler {
	return &handler{b: b, api: &api{b: b}, pages: newPages(b)}
}

// maxForm bounds a form body: the largest form holds a token and a return
// path.
const maxForm = 16 << 10

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v := web.ViewerFrom(r.Context())
	if v == nil || v.Session == nil {
		// Only reachable when mounted without the gateway in front; never
		// serve anything without a signed-in viewer.
		writeError(w, http.StatusUnauthorized, "unauthenticated", "")
		return
	}
	prefix := v.Prefix
	if prefix == "" {
		prefix = web.DefaultPathPrefix
	}
	segs, ok := below(r.URL.EscapedPath(), (&url.URL{Path: prefix}).EscapedPath())
	if !ok {
		h.pages.notFound(w, r, v, prefix)
		return
	}
	if segs == nil {
		// The prefix itself: relative links on the page need the slash.
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, prefix+"/", http.StatusSeeOther)
			return
		}
		h.pages.notFound(w, r, v, prefix)
		return
	}
	isAPI := segs[0] == "api"
	if !safeMethod(r.Method) {
		if !isAPI {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				h.pages.fail(w, r, v, prefix, http.StatusBadRequest, "Bad request", "The form could not be read.")
				return
			}
		}
		if !csrfOK(r, v.Origin, v.CSRF, !isAPI) {
			if isAPI {
				writeError(w, http.StatusForbidden, codeForbidden, "missing or invalid CSRF token, or foreign origin")
			} else {
				h.pages.fail(w, r, v, prefix, http.StatusForbidden, "Request refused",
					"This form could not be accepted: it has expired or was sent from another site. Go back, reload the page and try again.")
			}
			return
		}
	}
	if isAPI {
		h.api.serve(w, r, callerFor(v), segs[1:])
		return
	}
	h.pages.serve(w, r, v, prefix, segs)
}

func callerFor(v *web.Viewer) caller {
	return caller{admin: v.Admin, auditor: v.Auditor, sites: v.Sites, actor: actorOf(v.Session), self: v.Session}
}

// actorOf is what events record as the actor: the email, as SPEC asks,
// or the subject for providers that send no email. It is display only:
// rights come from the viewer the gateway built, never from an email read
// here.
func actorOf(s *session.Session) string {
	if s.Email != "" {
		return s.Email
	}
	return s.User
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// csrfOK decides whether a state-changing request was sent by our own
// pages or a deliberate API client rather than forged by another site.
// The origin checks come first and are not skippable by a token: a token
// leaked to another site must still not work from there.
func csrfOK(r *http.Request, origin, token string, form bool) bool {
	if !web.StateChangeAllowed(r, origin) {
		return false
	}
	if t := r.Header.Get("X-Gatehouse-CSRF"); t != "" && tokenEqual(t, token) {
		return true
	}
	if form {
		// The caller has parsed the form.
		return tokenEqual(r.PostForm.Get("csrf"), token)
	}
	// A cross-site page can only send this header after a CORS preflight,
	// which nothing here grants.
	return r.Header.Get("X-Requested-With") == "XMLHttpRequest"
}

func tokenEqual(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
