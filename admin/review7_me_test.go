package admin

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// Review (issue 7, items 2 and 6): "my sessions" matches sessions by
// subject alone, but a subject is unique only per issuer
// (Session.IssuerKey). With two providers on one store, any user (an
// auditor too, whose only DELETE is under /me) lists another provider's
// same-subject user's sessions, with their addresses and devices, and
// ends them. max_sessions has the same root cause (see
// gateway.TestReview7MaxSessionsSparesOtherIssuersSubject).
func TestReview7MySessionsStayWithinIssuer(t *testing.T) {
	for _, auditor := range []bool{false, true} {
		name := "user"
		if auditor {
			name = "auditor"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			mk := func(issuer string) *session.Session {
				now := e.clock.Now()
				s := &session.Session{
					ID: session.NewSecretFor("carol").ID(), User: "carol", Site: siteA,
					CreatedAt: now, LastAccess: now, ExpiresAt: now.Add(time.Hour),
					IP: "192.0.2.50", LastIP: "192.0.2.50", IssuerKey: session.IssuerKey(issuer),
				}
				if err := e.store.Create(context.Background(), s); err != nil {
					t.Fatal(err)
				}
				return s
			}
			mine := mk("https://idp-a.example")
			theirs := mk("https://idp-b.example")

			w := e.do(req{as: mine, method: http.MethodGet, path: "/api/me/sessions", auditor: auditor})
			if w.Code != http.StatusOK {
				t.Fatalf("GET /api/me/sessions: %d %s", w.Code, w.Body)
			}
			if slices.Contains(ids(t, w), theirs.ID) {
				t.Errorf("/api/me/sessions lists the session of the other provider's carol")
			}
			w = e.do(req{as: mine, method: http.MethodDelete, path: "/api/me/sessions/" + theirs.ID, header: xhr, auditor: auditor})
			if !e.exists(theirs) {
				t.Errorf("DELETE /api/me/sessions/<other provider's carol> answered %d and ended it", w.Code)
			}
		})
	}
}
