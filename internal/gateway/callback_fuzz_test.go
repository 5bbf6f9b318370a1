package gateway

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/oidcflow"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
	"github.com/gatehouse-proxy/gatehouse/internal/testclock"
	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

// fuzzT0 is the fuzz gateways' clock, fixed so that runs repeat.
var fuzzT0 = time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z

const fuzzHost = "site.test"

// refusingIdP is a provider with discovery and a token endpoint that
// refuses every code (invalid_grant), remembering the last form it was
// sent: enough for the sign-in to start and for a callback to get as far
// as the code exchange, without a sign-in ever succeeding.
type refusingIdP struct {
	srv  *httptest.Server
	mu   sync.Mutex
	form url.Values
}

func newRefusingIdP(f *testing.F) *refusingIdP {
	p := &refusingIdP{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss := p.srv.URL
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                                iss,
			"authorization_endpoint":                iss + "/authorize",
			"token_endpoint":                        iss + "/token",
			"jwks_uri":                              iss + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"keys": []any{}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		p.mu.Lock()
		p.form = r.PostForm
		p.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
	})
	p.srv = httptest.NewServer(mux)
	f.Cleanup(p.srv.Close)
	return p
}

// lastForm returns and forgets the last token request's form.
func (p *refusingIdP) lastForm() url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	form := p.form
	p.form = nil
	return form
}

// fuzzGateway is a site on the memory store in front of p, on a clock
// that stands still at fuzzT0.
func fuzzGateway(f *testing.F, p *refusingIdP) *Gateway {
	clk := testclock.New(fuzzT0)
	st := memstore.New(memstore.Options{Now: clk.Now})
	rt, err := NewRuntime(RuntimeConfig{Store: st, Events: st, Secret: testSecret, Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	g, err := New(Config{Issuer: p.srv.URL, ClientID: "site", ClientSecret: "site-secret"}, rt)
	if err != nil {
		f.Fatal(err)
	}
	return g
}

// The callback's answers, by what is wrong with it.
const (
	msgBadLink    = "This sign-in link is not valid."
	msgNotOurs    = "This sign-in attempt does not belong to this browser, or it has already been used."
	msgExpired    = "This sign-in attempt has expired."
	msgUsed       = "This sign-in attempt has already been used."
	msgIDPError   = "The identity provider refused the sign-in."
	msgNoCode     = "The identity provider returned no authorization code."
	msgNoExchange = "The sign-in could not be completed."
)

// Cookie modes of FuzzCallback.
const (
	cookieNone     = iota // no state cookie
	cookieRaw             // the fuzzed text as the state cookie
	cookieSealed          // a state sealed for this site
	cookieElsewere        // a state sealed for another site
	cookieModes
)

// FuzzCallback sends the callback endpoint a fuzzed query (state, code,
// error and anything else, malformed or repeated) with no state cookie,
// a fuzzed one, or one the gateway sealed holding a fuzzed state and
// creation time. It must never panic and never sign anyone in (the
// provider refuses every code), and it must refuse for the first reason
// that applies, in this order: a missing or oversized state, a cookie
// that does not open for this site or holds another state, an expired
// attempt, a state used before, an error from the provider, a missing
// code. Only a callback that passes all of those reaches the code
// exchange, which must send the code as given and the PKCE verifier
// from the cookie. The state cookie is deleted whatever happens.
func FuzzCallback(f *testing.F) {
	p := newRefusingIdP(f)
	g := fuzzGateway(f, p)
	f.Add("state=abc&code=xyz", uint8(cookieSealed), "", "abc", int64(0), false)
	f.Add("state=abc&error=access_denied", uint8(cookieSealed), "", "abc", int64(-60), true)
	f.Add("state=abc", uint8(cookieSealed), "", "abc", int64(-601), false)
	f.Add("state=abc&code=xyz", uint8(cookieElsewere), "", "abc", int64(0), false)
	f.Add("state=abc&state=abd&code=1", uint8(cookieSealed), "", "abd", int64(0), false)
	f.Add("state=abc&code=xyz", uint8(cookieRaw), "AAAA", "", int64(0), false)
	f.Add("code=xyz", uint8(cookieNone), "", "", int64(0), false)
	f.Add("state="+strings.Repeat("s", 513), uint8(cookieSealed), "", strings.Repeat("s", 513), int64(0), false)

	claimed := map[string]bool{} // states that reached the single-use claim
	f.Fuzz(func(t *testing.T, rawQuery string, mode uint8, cookie, sealedState string, createdOffset int64, forced bool) {
		r := httptest.NewRequest(http.MethodGet, "http://"+fuzzHost+"/.gatehouse/callback", nil)
		r.URL.RawQuery = rawQuery
		r.Header.Set("Accept", "application/json")
		q := r.URL.Query()
		state := q.Get("state")
		name := g.stateCookieName(state)

		// Creation times within ±20 minutes of now cover both edges of
		// the window; sealedState's own hash spreads the offsets.
		created := fuzzT0.Add(time.Duration(createdOffset%1200) * time.Second)
		ls := loginState{
			State:   oidcflow.State{State: sealedState, Nonce: "n-" + sealedState, Verifier: "v-" + sealedState},
			Return:  "/after",
			Created: created,
			Forced:  forced,
		}
		mode %= cookieModes
		switch mode {
		case cookieRaw:
			r.Header.Set("Cookie", name+"="+cookie)
		case cookieSealed, cookieElsewere:
			site := fuzzHost
			if mode == cookieElsewere {
				site = "other.test"
			}
			b, err := json.Marshal(ls)
			if err != nil {
				t.Fatal(err)
			}
			// JSON turns invalid UTF-8 into U+FFFD: the gateway reads
			// what was sealed, not what the fuzzer gave.
			if err := json.Unmarshal(b, &ls); err != nil {
				t.Fatal(err)
			}
			v := base64.RawURLEncoding.EncodeToString(g.rt.states.Seal(b, []byte(site)))
			r.AddCookie(&http.Cookie{Name: name, Value: v})
		}

		// What the callback must answer, rule by rule.
		want := ""
		exchange := false
		switch {
		case state == "" || len(state) > 512:
			want = msgBadLink
		case mode != cookieSealed || ls.State.State == "" || ls.State.State != state:
			want = msgNotOurs
		case fuzzT0.Sub(created) > stateTTL || created.After(fuzzT0.Add(time.Minute)):
			want = msgExpired
		case claimed[state]:
			want = msgUsed
		default:
			claimed[state] = true
			switch {
			case q.Get("error") != "":
				want = msgIDPError
			case q.Get("code") == "":
				want = msgNoCode
			default:
				want, exchange = msgNoExchange, true
			}
		}

		w := httptest.NewRecorder()
		if s := g.Serve(w, r); s != nil {
			t.Fatalf("callback %q let a request through as %q", rawQuery, s.User)
		}
		if w.Code != http.StatusBadRequest {
			t.Fatalf("callback %q: status %d, want 400; body %s", rawQuery, w.Code, w.Body)
		}
		var body struct{ Message string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("callback %q: body %q: %v", rawQuery, w.Body, err)
		}
		if body.Message != want {
			t.Fatalf("callback %q (cookie mode %d, sealed state %q, created %v): %q, want %q",
				rawQuery, mode, sealedState, created, body.Message, want)
		}
		deleted := false
		for _, c := range w.Result().Cookies() {
			if c.Value != "" && c.MaxAge >= 0 {
				t.Fatalf("callback %q set cookie %s", rawQuery, c.Name)
			}
			deleted = deleted || c.Name == name && c.MaxAge < 0
		}
		if want != msgBadLink && !deleted {
			t.Fatalf("callback %q kept its state cookie %s", rawQuery, name)
		}
		form := p.lastForm()
		switch {
		case !exchange && form != nil:
			t.Fatalf("callback %q (%s) reached the token endpoint", rawQuery, want)
		case exchange && form == nil:
			t.Fatalf("callback %q did not reach the token endpoint", rawQuery)
		case exchange:
			if form.Get("code") != q.Get("code") || form.Get("code_verifier") != ls.Verifier ||
				form.Get("redirect_uri") != "http://"+fuzzHost+"/.gatehouse/callback" {
				t.Fatalf("callback %q exchanged code %q verifier %q redirect %q; want %q, %q",
					rawQuery, form.Get("code"), form.Get("code_verifier"), form.Get("redirect_uri"), q.Get("code"), ls.Verifier)
			}
		}
	})
}

// FuzzStateCookie starts a sign-in with a fuzzed return path and checks
// the state cookie the gateway wrote: it must open for this site only,
// hold the state sent to the provider, the return path web.SafeReturn
// allows and the time of the sign-in, and be named after its state. A
// copy with one byte changed (position and bits fuzzed) must not open,
// unless base64 decodes it to the same bytes; a fuzzed value as the
// cookie must not open or crash openState.
func FuzzStateCookie(f *testing.F) {
	p := newRefusingIdP(f)
	g := fuzzGateway(f, p)
	f.Add("/reports?year=2026", uint16(0), byte(1), "garbage")
	f.Add("//evil.example/", uint16(40), byte(0x80), "")
	f.Add("/\\evil.example", uint16(300), byte(0x20), strings.Repeat("A", 4097))
	f.Add("https://evil.example/", uint16(7), byte(0xff), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, rd string, pos uint16, flip byte, value string) {
		r := httptest.NewRequest(http.MethodGet, "http://"+fuzzHost+"/.gatehouse/login", nil)
		r.URL.RawQuery = url.Values{"rd": {rd}}.Encode()
		w := httptest.NewRecorder()
		g.Serve(w, r)
		if w.Code != http.StatusFound {
			t.Fatalf("login rd=%q: status %d; body %s", rd, w.Code, w.Body)
		}
		loc, err := url.Parse(w.Header().Get("Location"))
		if err != nil || !strings.HasPrefix(loc.String(), p.srv.URL+"/authorize?") {
			t.Fatalf("login rd=%q: Location %q", rd, w.Header().Get("Location"))
		}
		state := loc.Query().Get("state")
		cookies := w.Result().Cookies()
		if len(cookies) != 1 || cookies[0].Name != g.stateCookieName(state) || cookies[0].Path != "/.gatehouse/callback" {
			t.Fatalf("login rd=%q: cookies %v, want one named for state %q", rd, cookies, state)
		}
		v := cookies[0].Value

		var ls loginState
		if err := g.openState(v, fuzzHost, &ls); err != nil {
			t.Fatalf("login rd=%q: own state cookie does not open: %v", rd, err)
		}
		if !ls.CheckState(state) || ls.Return != web.SafeReturn(rd) || !ls.Created.Equal(fuzzT0) || ls.Forced ||
			ls.Nonce == "" || ls.Verifier == "" || loc.Query().Get("nonce") != ls.Nonce {
			t.Fatalf("login rd=%q: state cookie holds %+v; state %q nonce %q", rd, ls, state, loc.Query().Get("nonce"))
		}
		if err := g.openState(v, "other.test", &loginState{}); err == nil {
			t.Fatalf("login rd=%q: state cookie opens for another site", rd)
		}

		if flip != 0 {
			b := []byte(v)
			b[int(pos)%len(b)] ^= flip
			var got loginState
			if err := g.openState(string(b), fuzzHost, &got); err == nil {
				orig, _ := base64.RawURLEncoding.DecodeString(v)
				now, _ := base64.RawURLEncoding.DecodeString(string(b))
				if string(orig) != string(now) {
					t.Fatalf("login rd=%q: state cookie with byte %d changed still opens", rd, int(pos)%len(b))
				}
			}
		}
		if value != v {
			var got loginState
			if err := g.openState(value, fuzzHost, &got); err == nil {
				orig, _ := base64.RawURLEncoding.DecodeString(v)
				now, _ := base64.RawURLEncoding.DecodeString(value)
				if string(orig) != string(now) {
					t.Fatalf("openState(%q) opened a value the gateway never sealed: %+v", value, got)
				}
			}
		}
	})
}
