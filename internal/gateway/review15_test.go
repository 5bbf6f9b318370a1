package gateway

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
)

// Review 15: a hostile look at the request path (identity headers,
// forward-auth, odd identity values, session cookies).

// rawRequest writes req (CRLF line ends, ending in an empty line) to the
// server at base as it stands, so that duplicated headers, odd spellings
// and folded lines reach Go's parser unchanged.
func rawRequest(t *testing.T, base, req string) (*http.Response, string) {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req = strings.ReplaceAll(req, "HOST", u.Host)
	if _, err := conn.Write([]byte(strings.ReplaceAll(req, "\n", "\r\n"))); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	return resp, b.String()
}

// identityOf is every header of the echo that folds (case, "_") to an
// identity header, by its folded name.
func identityOf(e echo) map[string][]string {
	out := map[string][]string{}
	for k, v := range e.Headers {
		if isIdentityHeader(k) {
			n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
			out[n] = append(out[n], v...)
		}
	}
	return out
}

var review15Spoofs = "X-Forwarded-User: mallory\n" +
	"x-forwarded-user: mallory2\n" +
	"X_Forwarded_User: mallory3\n" +
	"x_FORWARDED-user: mallory4\n" +
	"X-Forwarded-Email: boss@example.com\n" +
	"X-Forwarded-Email: boss2@example.com\n" +
	"X-Forwarded_Preferred_Username: boss\n" +
	"X-Forwarded-Groups: gatehouse-admins\n" +
	"X_Forwarded_Groups: gatehouse-admins\n" +
	"X-Forwarded-Access-Token: forged\n" +
	"X_Forwarded_Access_Token: forged\n"

// Client copies of the identity headers in every spelling Go's parser
// accepts, duplicated, never reach the upstream; without a session they
// are no session.
func TestReview15SpoofedIdentityHeaders(t *testing.T) {
	h := newHarness(t, memBackend)
	alice := h.browser()
	alice.login("alice", "/")
	cookie := "gatehouse=" + alice.cookie("gatehouse")

	resp, body := rawRequest(t, h.site.URL, "GET /x HTTP/1.1\nHost: HOST\nAccept: application/json\n"+review15Spoofs+"Connection: close\n\n")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("spoofed headers, no session: %d %.200s, want 401", resp.StatusCode, body)
	}

	resp, body = rawRequest(t, h.site.URL, "GET /x HTTP/1.1\nHost: HOST\nAccept: application/json\n"+review15Spoofs+
		"Cookie: "+cookie+"\nConnection: close\n\n")
	var e echo
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("with a session: %d %.300s", resp.StatusCode, body)
	}
	got := identityOf(e)
	want := map[string][]string{
		"x-forwarded-user":               {"alice"},
		"x-forwarded-email":              {"alice@example.com"},
		"x-forwarded-preferred-username": {"alice"},
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if v := got["x-forwarded-access-token"]; v != nil {
		t.Errorf("a client's access token reached the upstream: %q", v)
	}
	for _, g := range got["x-forwarded-groups"] {
		if strings.Contains(g, "mallory") || g == "gatehouse-admins" && len(got["x-forwarded-groups"]) > 1 {
			t.Errorf("groups = %q", got["x-forwarded-groups"])
		}
	}
	for k, v := range got {
		if len(v) != 1 {
			t.Errorf("%s has %d values: %q", k, len(v), v)
		}
	}

	// Folded lines and names with spaces: Go refuses them outright, so
	// they cannot pass as something the gateway did not see.
	for _, hdr := range []string{
		"X-Forwarded-User : mallory\n",
		"X-Forwarded-User\t: mallory\n",
		"X-Forwarded-User: alice\n mallory\n",
		" X-Forwarded-User: mallory\n",
	} {
		resp, body := rawRequest(t, h.site.URL, "GET /x HTTP/1.1\nHost: HOST\nAccept: application/json\n"+hdr+"Cookie: "+cookie+"\nConnection: close\n\n")
		if resp.StatusCode == http.StatusOK {
			var e echo
			_ = json.Unmarshal([]byte(body), &e)
			if u := identityOf(e)["x-forwarded-user"]; !slices.Equal(u, []string{"alice"}) {
				t.Errorf("%q: upstream got user %q", hdr, u)
			}
		}
	}
}

// The forward-auth endpoint answers from the session alone: spoofed
// identity headers and X-Forwarded-Host/Uri/Method naming another site
// change nothing.
func TestReview15ForwardAuthSpoofs(t *testing.T) {
	h := newHarness(t, memBackend, func(c *Config) { c.Identity.Groups = []string{"gatehouse-admins"} })
	spoof := strings.ReplaceAll(review15Spoofs, "\n", "\nX-Forwarded-Host: other.example\nX-Forwarded-Uri: /admin\nX-Forwarded-Method: GET\n")
	resp, body := rawRequest(t, h.site.URL, "GET /.gatehouse/auth HTTP/1.1\nHost: HOST\n"+spoof+"Connection: close\n\n")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forward-auth, spoofed headers, no session: %d %.200s, want 401", resp.StatusCode, body)
	}
	for k := range resp.Header {
		if isIdentityHeader(k) {
			t.Errorf("401 carries %s: %q", k, resp.Header[k])
		}
	}
	// bob is no admin: refused whatever the forwarded headers claim.
	bob := h.browser()
	p := startLogin(bob, "/")
	if r := bob.Do(http.MethodGet, bob.CallbackURL(p, "bob"), nil, true); r.Status != http.StatusForbidden {
		t.Fatalf("bob at the callback: %d", r.Status)
	}
	alice := h.browser()
	alice.login("alice", "/")
	r := alice.Do(http.MethodGet, h.site.URL+"/.gatehouse/auth", nil, false,
		"X-Forwarded-Host", "other.example", "X-Forwarded-Uri", "/x", "X-Forwarded-User", "mallory", "X_Forwarded_Groups", "gatehouse-admins")
	if r.Status != http.StatusOK || r.Header.Get(HeaderUser) != "alice" || len(r.Header[HeaderUser]) != 1 {
		t.Errorf("forward-auth for alice: %d %q", r.Status, r.Header[HeaderUser])
	}
	for k := range r.Header {
		if isIdentityHeader(k) && k != http.CanonicalHeaderKey(k) {
			t.Errorf("forward-auth answer carries %s", k)
		}
	}
}

// proxiedSite is a site that reaches its upstream through a real HTTP hop
// (httputil.ReverseProxy, as Caddy's reverse_proxy does), so the upstream
// sees the headers as an HTTP parser reads them off the wire.
func proxiedSite(t *testing.T, h *harness) string {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(upstream))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	st := &site{}
	st.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := st.gw.Serve(w, r); s != nil {
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(st.srv.Close)
	id := "site-" + st.srv.Listener.Addr().String()
	gw, err := New(h.baseConfig(id), h.rt)
	if err != nil {
		t.Fatal(err)
	}
	st.gw = gw
	h.register(id, st.srv.URL)
	return st.srv.URL
}

// splitGroups is the README's recipe: split on ",", percent-decode each.
func splitGroups(t *testing.T, v string) []string {
	var out []string
	for p := range strings.SplitSeq(v, ",") {
		g, err := url.PathUnescape(p)
		if err != nil {
			t.Errorf("group %q does not percent-decode: %v", p, err)
		}
		out = append(out, g)
	}
	return out
}

// Odd identity values from the provider reach the upstream as one header
// each, with no header injected, and the groups come back by the README's
// recipe as the provider named them: a group " gatehouse-admins" must
// not reach the upstream as "gatehouse-admins" (HTTP drops the spaces at
// a value's edges, and most upstreams trim list items).
func TestReview15OddIdentityValues(t *testing.T) {
	for _, tt := range []struct {
		name   string
		sub    string
		claims map[string]any
		groups []string
	}{
		{"long subject", strings.Repeat("s", 150), nil, nil},
		{"subject with comma, percent, edge spaces", " a,b%0A ", nil, nil},
		{"control characters", "", map[string]any{"preferred_username": "a\r\nX-Forwarded-User: root\x00", "email": "a\nb@example.com"},
			[]string{"x\r\nX-Forwarded-Groups: admin", "nul\x00"}},
		{"commas and percent", "", nil, []string{"staff,gatehouse-admins", "100%", "%2C"}},
		{"unicode", "\u202eodd\u2028", map[string]any{"preferred_username": "\u202eadmin\u2028x"}, []string{"\u2028", "\u200fgrp"}},
		{"edge spaces, one group", "", nil, []string{" gatehouse-admins"}},
		{"edge spaces, several", "", nil, []string{"staff ", " gatehouse-admins "}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sub := tt.sub
			if sub == "" {
				sub = "odd"
			}
			h := newHarnessIDP(t, memBackend, nil, func(c *devidp.Config) {
				c.Users = append(c.Users, devidp.User{Subject: sub, Username: "odd", Password: "demo", Email: "odd@example.com"})
			})
			base := proxiedSite(t, h)
			h.tamper = func(c map[string]any) {
				for k, v := range tt.claims {
					c[k] = v
				}
				if tt.groups != nil {
					c["groups"] = tt.groups
				}
			}
			b := h.browser()
			e := parseEcho(t, b.Login(base, "/", "odd"))
			got := identityOf(e)
			for k, v := range got {
				if len(v) != 1 {
					t.Errorf("%s has %d values: %q", k, len(v), v)
				}
			}
			if want := []string{escapeHeader(sub, false)}; !slices.Equal(got["x-forwarded-user"], want) {
				t.Errorf("user = %q, want %q", got["x-forwarded-user"], want)
			}
			if tt.groups != nil {
				g := got["x-forwarded-groups"]
				if len(g) != 1 {
					t.Fatalf("groups header = %q", g)
				}
				if dec := splitGroups(t, g[0]); !slices.Equal(dec, tt.groups) {
					t.Errorf("groups %q decode to %q, want %q", g[0], dec, tt.groups)
				}
				for _, item := range strings.Split(g[0], ",") {
					if strings.TrimSpace(item) == "gatehouse-admins" {
						t.Errorf("a group reaches the upstream as %q: %q", item, tt.groups)
					}
				}
			}
		})
	}
}

// An email the provider does not vouch for grants nothing at the gateway
// and is left out of the signed assertion; the plain header must not
// hand it to the upstream either, which would take carol for whoever
// owns the address she typed (Grafana's auth proxy, for one, signs users
// in by X-Forwarded-Email).
func TestReview15UnverifiedEmailNotForwarded(t *testing.T) {
	h := newHarness(t, memBackend)
	carol := h.browser()
	e := carol.login("carol", "/")
	if v := e.Headers[HeaderEmail]; v != nil {
		t.Errorf("carol's unverified email reached the upstream: %q", v)
	}
	r := carol.Do(http.MethodGet, h.site.URL+"/.gatehouse/auth", nil, false)
	if r.Status != http.StatusOK {
		t.Fatalf("forward-auth for carol: %d", r.Status)
	}
	if v := r.Header[HeaderEmail]; v != nil {
		t.Errorf("forward-auth hands on carol's unverified email: %q", v)
	}
	// The documented opt-out passes it.
	lax := h.addSite(func(c *Config) { c.InsecureUnverifiedEmail = true })
	c := h.browser()
	if e := parseEcho(t, c.Login(lax.URL(), "/", "carol")); !slices.Equal(e.Headers[HeaderEmail], []string{"carol@example.com"}) {
		t.Errorf("insecure_unverified_email site: email %q, want carol's", e.Headers[HeaderEmail])
	}
	// A verified email still passes.
	if e := h.browser().login("alice", "/"); !slices.Equal(e.Headers[HeaderEmail], []string{"alice@example.com"}) {
		t.Errorf("alice's email = %q", e.Headers[HeaderEmail])
	}
}

// The session secret never reaches the upstream, however the Cookie
// header is laid out: several lines, quoted values, both names, odd
// spacing; other cookies pass.
func TestReview15SessionCookieNeverForwarded(t *testing.T) {
	h := newHarness(t, memBackend)
	alice := h.browser()
	alice.login("alice", "/")
	sec := alice.cookie("gatehouse")
	for _, cookies := range [][]string{
		{"a=1", "gatehouse=" + sec},
		{"gatehouse=" + sec, "gatehouse=" + sec + "; b=2"},
		{`gatehouse="` + sec + `"; a=1`},
		{"a=1;gatehouse=" + sec + ";b=2"},
		{"a=1;  \tgatehouse=" + sec + " \t;b=2"},
		{"__Host-gatehouse=" + sec + "; gatehouse=" + sec},
		{strings.Repeat("x=y; ", 2000) + "gatehouse=" + sec},
	} {
		req := "GET /x HTTP/1.1\nHost: HOST\nAccept: application/json\n"
		for _, c := range cookies {
			req += "Cookie: " + c + "\n"
		}
		resp, body := rawRequest(t, h.site.URL, req+"Connection: close\n\n")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%.80q: %d", cookies, resp.StatusCode)
			continue
		}
		if strings.Contains(body, sec) {
			t.Errorf("%.80q: the session secret reached the upstream: %.300s", cookies, body)
		}
	}
}

// Junk of a cookie's length and prefix, but not base64url, cannot be a
// session and is skipped before maxSessionCookies counts: eight such
// cookies, set for a parent domain by a sibling host on plain HTTP, must
// not lock the user out.
func TestReview15JunkOfCookieShapeLocksOut(t *testing.T) {
	h := newHarness(t, memBackend)
	alice := h.browser()
	alice.login("alice", "/")
	junk := "g1." + strings.Repeat("!", 43)
	cookie := strings.Repeat("gatehouse="+junk+"; ", maxSessionCookies) + "gatehouse=" + alice.cookie("gatehouse")
	r := h.browser().Do(http.MethodGet, h.site.URL+"/a/b/c/d/e/f/g/h", nil, false, "Cookie", cookie)
	if r.Status != http.StatusOK {
		t.Fatalf("real cookie behind %d junk ones of cookie shape: %d, want 200 as alice", maxSessionCookies, r.Status)
	}
	if got := parseEcho(t, r).Headers[HeaderUser]; len(got) != 1 || got[0] != "alice" {
		t.Errorf("upstream X-Forwarded-User = %v, want [alice]", got)
	}
}
