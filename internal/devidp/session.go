package devidp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// cookieName differs from the gateway's cookie because browsers share
// cookies across ports: the demo runs both on localhost.
const cookieName = "gatehouse_devidp"

// session is a provider session: one browser signed in as one user.
type session struct {
	sid      string
	subject  string
	authTime time.Time
	// amr is how the person authenticated when authTime was set: pwd,
	// and otp after a one-time code (RFC 8176).
	amr []string
	// clients signed in through this session: they hear of its end.
	clients map[string]bool
}

// browser is the requesting browser as seen by handlers deep in the op
// library, which only get a context.
type browser struct {
	secret string // the session cookie's value; empty without one
	forget func() // expires the cookie in the response
}

type browserKey struct{}

func (p *Provider) browser(w http.ResponseWriter, r *http.Request) *browser {
	b := &browser{forget: func() { p.setCookie(w, "", -1) }}
	if c, err := r.Cookie(cookieName); err == nil {
		b.secret = c.Value
	}
	return b
}

// setCookie sets the session cookie; maxAge < 0 deletes it. A browser-session
// cookie (no Max-Age) is enough for development.
func (p *Provider) setCookie(w http.ResponseWriter, value string, maxAge int) {
	path := p.prefix
	if path == "" {
		path = "/"
	}
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    value,
		Path:     path,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   p.secureCookie,
		SameSite: http.SameSiteLaxMode,
	})
}

// sessionOf returns a copy of the browser's live session.
func (p *Provider) sessionOf(b *browser) (session, bool) {
	if b == nil || b.secret == "" {
		return session{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.sessions[p.cookies[b.secret]]
	if !ok {
		return session{}, false
	}
	return *s, true
}

// EndUserSessions ends every provider session of subject, revokes their
// tokens and sends back-channel logout tokens to the clients signed in
// through them. It returns once every delivery has been tried; the error
// joins the failed ones.
func (p *Provider) EndUserSessions(subject string) error {
	return p.endSessions(context.Background(), func(s *session) bool { return s.subject == subject })
}

// endSessions ends the sessions that match, then notifies their clients.
func (p *Provider) endSessions(ctx context.Context, match func(*session) bool) error {
	var notices []logoutNotice
	p.mu.Lock()
	for _, s := range p.sessions {
		if match(s) {
			notices = append(notices, p.endSessionLocked(s)...)
		}
	}
	p.mu.Unlock()
	return p.deliver(ctx, notices)
}

// logoutNotice is one back-channel logout token to send.
type logoutNotice struct {
	clientID, uri, subject, sid string
}

// endSessionLocked drops a session with its cookie and tokens and returns the
// notices for its clients. Caller holds p.mu.
func (p *Provider) endSessionLocked(s *session) []logoutNotice {
	delete(p.sessions, s.sid)
	for secret, sid := range p.cookies {
		if sid == s.sid {
			delete(p.cookies, secret)
		}
	}
	for id, at := range p.accessTokens {
		if at.sid == s.sid {
			delete(p.accessTokens, id)
		}
	}
	for t, rt := range p.refreshTokens {
		if rt.sid == s.sid {
			delete(p.refreshTokens, t)
		}
	}
	var notices []logoutNotice
	for clientID := range s.clients {
		if c, ok := p.clients[clientID]; ok && c.BackchannelLogoutURI != "" {
			notices = append(notices, logoutNotice{clientID, c.BackchannelLogoutURI, s.subject, s.sid})
		}
	}
	return notices
}

// deliver posts the logout tokens concurrently and waits for all, so that a
// caller (and a test) knows the relying parties have been told.
func (p *Provider) deliver(ctx context.Context, notices []logoutNotice) error {
	// The browser that asked may go away; the relying parties must still hear.
	ctx = context.WithoutCancel(ctx)
	errs := make([]error, len(notices))
	var wg sync.WaitGroup
	for i, n := range notices {
		wg.Go(func() { errs[i] = p.sendLogoutToken(ctx, n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sendLogoutToken implements OIDC Back-Channel Logout 1.0, section 2.5.
func (p *Provider) sendLogoutToken(ctx context.Context, n logoutNotice) error {
	now := p.now()
	claims := &oidc.LogoutTokenClaims{
		Issuer:     p.issuer,
		Subject:    n.subject,
		Audience:   oidc.Audience{n.clientID},
		IssuedAt:   oidc.FromTime(now),
		Expiration: oidc.FromTime(now.Add(logoutTokenLifetime)),
		JWTID:      randomID(),
		Events:     map[string]any{"http://schemas.openid.net/event/backchannel-logout": struct{}{}},
		SessionID:  n.sid,
	}
	// Section 2.4 recommends the explicit type, which keeps a logout token
	// from passing for an ID token.
	token, err := p.sign(claims, "logout+jwt")
	if err != nil {
		return err
	}
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.uri, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("devidp: back-channel logout of %s: %w", n.clientID, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("devidp: back-channel logout of %s: %w", n.clientID, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("devidp: back-channel logout of %s: %s answered %s", n.clientID, n.uri, resp.Status)
	}
	return nil
}
