package devidp

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/binary"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

//go:embed templates/pages.html
var pagesFS embed.FS

func parsePages() (*template.Template, error) {
	t, err := template.ParseFS(pagesFS, "templates/pages.html")
	if err != nil {
		return nil, fmt.Errorf("devidp: parse pages: %w", err)
	}
	return t, nil
}

type loginPage struct {
	Title, Action, ID, ClientID, Username, Error string
	// Users are listed for newcomers unless Config.HideUsers.
	Users []User
}

// codePage asks for the one-time code of a user with a second factor.
type codePage struct {
	Title, Action, ID, ClientID, Code, Error string
}

type messagePage struct {
	Title, Message string
}

// render buffers the page so that a template error still gets a clean 500.
func (p *Provider) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := p.pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "devidp: cannot render page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// No framing: a framed login form invites clickjacking. No form-action:
	// browsers apply it to the redirect chain back to the relying party.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on the form post, which the login CSRF check refuses.
	// Regression guard: TestLoginFormOriginFromBrowser.
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (p *Provider) renderMessage(w http.ResponseWriter, status int, title, message string) {
	p.render(w, status, "message", messagePage{Title: title, Message: message})
}

func (p *Provider) renderLogin(w http.ResponseWriter, status int, a *authRequest, username, errMsg string) {
	p.render(w, status, "login", loginPage{
		Title:    "Sign in",
		Action:   p.prefix + "/login",
		ID:       a.id,
		ClientID: a.clientID,
		Username: username,
		Error:    errMsg,
		Users:    p.userList,
	})
}

func (p *Provider) renderCode(w http.ResponseWriter, status int, a *authRequest, code, errMsg string) {
	p.render(w, status, "code", codePage{
		Title:    "One-time code",
		Action:   p.prefix + "/login",
		ID:       a.id,
		ClientID: a.clientID,
		Code:     code,
		Error:    errMsg,
	})
}

func (p *Provider) renderUnknownRequest(w http.ResponseWriter) {
	p.renderMessage(w, http.StatusBadRequest, "Sign-in request expired",
		"This sign-in request is unknown, expired or already used. Go back to the application and sign in again.")
}

// serveLogin is the login page the op library redirects to from /authorize.
func (p *Provider) serveLogin(w http.ResponseWriter, r *http.Request) {
	b, _ := r.Context().Value(browserKey{}).(*browser)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		a, ok := p.pendingAuthRequest(r.URL.Query().Get("id"))
		if !ok {
			p.renderUnknownRequest(w)
			return
		}
		if s, ok := p.sessionOf(b); ok && p.mayReuse(s, a) {
			p.completeLogin(w, r, a.id, s.sid, http.StatusFound)
			return
		}
		if slices.Contains(a.prompt, oidc.PromptNone) {
			op.AuthRequestError(w, r, a, oidc.ErrLoginRequired(), p.op)
			return
		}
		p.renderLogin(w, http.StatusOK, a, a.loginHint, "")
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			p.renderMessage(w, http.StatusBadRequest, "Bad request", "The sign-in form could not be read.")
			return
		}
		// A cross-site form post could sign the victim's browser in as the
		// attacker (login CSRF).
		if o := r.Header.Get("Origin"); o != "" && o != p.siteOrigin {
			p.renderMessage(w, http.StatusForbidden, "Sign-in refused", "The sign-in form was posted from another site.")
			return
		}
		a, ok := p.pendingAuthRequest(r.PostForm.Get("id"))
		if !ok {
			p.renderUnknownRequest(w)
			return
		}
		if r.PostForm.Has("code") {
			p.serveCode(w, r, b, a)
			return
		}
		username := r.PostForm.Get("username")
		u, ok := p.checkPassword(username, r.PostForm.Get("password"))
		if !ok {
			// One message for unknown users and wrong passwords: no user enumeration.
			p.renderLogin(w, http.StatusUnauthorized, a, username, "Invalid username or password.")
			return
		}
		if u.SecondFactor {
			code, ok := p.startCode(a.id, u.Subject)
			if !ok {
				p.renderUnknownRequest(w)
				return
			}
			p.renderCode(w, http.StatusOK, a, code, "")
			return
		}
		sid := p.signIn(r.Context(), w, b, u.Subject, []string{"pwd"})
		// 303: the browser follows a POST's redirect with a GET.
		p.completeLogin(w, r, a.id, sid, http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// maxCodeTries is how many wrong one-time codes end a sign-in request.
const maxCodeTries = 3

// serveCode checks the one-time code posted for auth request a and, when
// it is the one shown, signs the person in with amr ["pwd", "otp"].
func (p *Provider) serveCode(w http.ResponseWriter, r *http.Request, b *browser, a *authRequest) {
	subject, code, ok := p.checkCode(a.id, r.PostForm.Get("code"))
	switch {
	case ok:
		sid := p.signIn(r.Context(), w, b, subject, []string{"pwd", "otp"})
		p.completeLogin(w, r, a.id, sid, http.StatusSeeOther)
	case code == "":
		// No password step before, or too many wrong codes.
		p.renderUnknownRequest(w)
	default:
		p.renderCode(w, http.StatusUnauthorized, a, code, "Wrong code.")
	}
}

// startCode records that the password of subject was right for auth
// request id and returns the one-time code to show. A real provider
// would send it to the person's phone; this one shows it on its page,
// which is enough to walk through a second step.
func (p *Provider) startCode(id, subject string) (string, bool) {
	var n [4]byte
	_, _ = rand.Read(n[:])
	code := fmt.Sprintf("%06d", binary.BigEndian.Uint32(n[:])%1_000_000)
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.authRequests[id]
	if !ok || a.code != "" {
		return "", false
	}
	a.otpSubject, a.otpCode, a.otpTries = subject, code, 0
	return code, true
}

// checkCode compares a posted code with the one shown for auth request
// id. It returns the subject when it matches; otherwise the code to show
// again, or "" once the request has no code (never asked, or
// maxCodeTries spent, which ends the request).
func (p *Provider) checkCode(id, got string) (subject, code string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, found := p.authRequests[id]
	if !found || a.otpCode == "" {
		return "", "", false
	}
	if equalSecret(got, a.otpCode) {
		subject = a.otpSubject
		a.otpSubject, a.otpCode = "", ""
		return subject, "", true
	}
	a.otpTries++
	if a.otpTries >= maxCodeTries {
		delete(p.authRequests, id)
		return "", "", false
	}
	return "", a.otpCode, false
}

// pendingAuthRequest returns a copy of an auth request still waiting for a
// sign-in.
func (p *Provider) pendingAuthRequest(id string) (*authRequest, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.authRequests[id]
	if !ok || a.code != "" || p.now().Sub(a.created) > authRequestLifetime {
		return nil, false
	}
	return a.copy(), true
}

// mayReuse tells whether an existing provider session satisfies the request
// without showing the form (SSO).
func (p *Provider) mayReuse(s session, a *authRequest) bool {
	if slices.Contains(a.prompt, oidc.PromptLogin) {
		return false
	}
	if a.maxAge != nil && p.now().Sub(s.authTime) >= time.Duration(*a.maxAge)*time.Second {
		return false
	}
	// An id_token_hint for someone else: let the person choose by signing in.
	return a.hintSubject == "" || a.hintSubject == s.subject
}

// checkPassword does the same work for unknown users and wrong passwords, so
// neither the answer nor its timing tells which usernames exist.
func (p *Provider) checkPassword(username, password string) (User, bool) {
	u, found := p.users[username] // read-only after New
	want := u.Password
	if !found {
		want = "\x00no such user"
	}
	ok := equalSecret(password, want)
	p.mu.Lock()
	disabled := p.disabled[u.Subject]
	p.mu.Unlock()
	return u, ok && found && u.Password != "" && !disabled
}

// signIn starts (or renews) the browser's provider session for subject,
// who authenticated by amr, and returns its sid.
func (p *Provider) signIn(ctx context.Context, w http.ResponseWriter, b *browser, subject string, amr []string) string {
	var notices []logoutNotice
	p.mu.Lock()
	now := p.now()
	if b != nil && b.secret != "" {
		if s, ok := p.sessions[p.cookies[b.secret]]; ok {
			if s.subject == subject {
				s.authTime, s.amr = now, amr
				p.mu.Unlock()
				return s.sid
			}
			// Someone else signs in on this browser: the previous person's
			// session ends, and their relying parties hear of it.
			notices = p.endSessionLocked(s)
		}
	}
	s := &session{sid: randomID(), subject: subject, authTime: now, amr: amr, clients: make(map[string]bool)}
	secret := randomID()
	p.sessions[s.sid] = s
	p.cookies[secret] = s.sid
	p.mu.Unlock()
	p.setCookie(w, secret, 0)
	_ = p.deliver(ctx, notices) // best effort, as at end_session
	return s.sid
}

// completeLogin marks the auth request as signed in through session sid and
// sends the browser to the op library's callback, which issues the code.
func (p *Provider) completeLogin(w http.ResponseWriter, r *http.Request, id, sid string, status int) {
	p.mu.Lock()
	a, okA := p.authRequests[id]
	s, okS := p.sessions[sid]
	if okA && okS {
		a.done, a.subject, a.sid, a.authTime, a.amr = true, s.subject, s.sid, s.authTime, s.amr
		s.clients[a.clientID] = true
	}
	p.mu.Unlock()
	if !okA || !okS {
		p.renderUnknownRequest(w)
		return
	}
	callback := op.AuthCallbackURL(p.op)(op.ContextWithIssuer(r.Context(), p.issuer), id)
	http.Redirect(w, r, callback, status)
}
