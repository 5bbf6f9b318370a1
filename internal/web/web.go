// Package web holds what the gateway and the admin pages share about HTTP
// requests: the signed-in viewer carried in a request context, the one rule
// that tells a browser navigation from a script, the same-origin check for
// state-changing requests, and safe return paths (SafeReturn). It knows
// nothing of Caddy and does no I/O.
package web

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// DefaultPathPrefix is where gatehouse's own endpoints live unless a site
// says otherwise.
const DefaultPathPrefix = "/.gatehouse"

// Viewer is the signed-in user a gateway page or API call acts for.
type Viewer struct {
	Session *session.Session
	// Admin may see and end the sessions of the sites in Sites.
	Admin bool
	// Auditor may see what an admin of the sites in Sites sees, and end
	// nothing (but their own sessions). Admin wins when both are set.
	Auditor bool
	// Sites limits what an admin reaches: the sites whose admin rules
	// grant the viewer admin rights. Nil means every site; a non-nil
	// empty slice means none. It never limits the viewer's own sessions.
	Sites []string
	// CSRF is the token forms of this session must carry.
	CSRF string
	// Prefix is the site's path prefix, for building links.
	Prefix string
	// Origin is the site's own origin ("https://app.example.com"), with the
	// scheme Caddy reports (a TLS-terminating proxy in trusted_proxies
	// counts), for same-origin checks.
	Origin string
}

// Reaches reports whether the viewer may see site's sessions and events
// as an admin or an auditor (ending them takes Admin too).
func (v *Viewer) Reaches(site string) bool {
	return (v.Admin || v.Auditor) && (v.Sites == nil || slices.Contains(v.Sites, site))
}

type viewerKey struct{}

// WithViewer returns ctx carrying v.
func WithViewer(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

// ViewerFrom returns the viewer in ctx, or nil.
func ViewerFrom(ctx context.Context) *Viewer {
	v, _ := ctx.Value(viewerKey{}).(*Viewer)
	return v
}

// Navigation tells a browser loading a page (which gets HTML, and may be
// redirected to sign in) from a script, an API call or a sub-resource
// (which get JSON and a 401). Sec-Fetch-Mode decides when the browser sends
// it; otherwise an XMLHttpRequest marker means a script and an Accept of
// text/html means a page.
func Navigation(r *http.Request) bool {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// Origin is the origin of a request to this server for scheme ("http" or
// "https"): the scheme and the Host header.
func Origin(scheme string, r *http.Request) string {
	return scheme + "://" + r.Host
}

// SameOrigin compares an Origin header with the site's own origin (as
// Origin returns it). Schemes and hosts compare case-insensitively and
// default ports are ignored on both sides (browsers omit them in Origin,
// clients vary in Host). "null", paths and user info never match.
func SameOrigin(got, own string) bool {
	g, err := url.Parse(got)
	if err != nil || g.Host == "" || g.Path != "" || g.User != nil || g.RawQuery != "" {
		return false
	}
	o, err := url.Parse(own)
	if err != nil || o.Host == "" {
		return false
	}
	if !strings.EqualFold(g.Scheme, o.Scheme) {
		return false
	}
	scheme := strings.ToLower(o.Scheme)
	return hostPort(g.Host, scheme) == hostPort(o.Host, scheme)
}

// StateChangeAllowed refuses state-changing requests sent from another
// site: with an Origin header it must be own; without one (old browsers,
// curl) only a browser's explicit cross-site marker refuses.
func StateChangeAllowed(r *http.Request, own string) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return SameOrigin(o, own)
	}
	return r.Header.Get("Sec-Fetch-Site") != "cross-site"
}

// FromElsewhere tells a request sent from another site, for endpoints
// that a GET may reach (sign-out): Sec-Fetch-Site when the browser sends
// it ("same-site", a sibling subdomain, counts as elsewhere); otherwise a
// Referer of another origin, which browsers without Fetch Metadata (Safari
// before 16.4) still send on a cross-site link, by default as the origin.
// Without either (curl, a typed URL, Referrer-Policy no-referrer) the
// request is taken as the site's own.
func FromElsewhere(r *http.Request, own string) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "cross-site" || site == "same-site"
	}
	ref := r.Header.Get("Referer")
	if ref == "" {
		return false
	}
	u, err := url.Parse(ref)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return true
	}
	return !SameOrigin(u.Scheme+"://"+u.Host, own)
}

func hostPort(host, scheme string) string {
	host = strings.ToLower(host)
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		return host
	}
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return host
}
