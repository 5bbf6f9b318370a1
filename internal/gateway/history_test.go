package gateway

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// History passes through the harness's store wrapper.
func (f *failingStore) History(ctx context.Context, q activity.HistoryFilter) (activity.HistoryPage, error) {
	return f.backend.(activity.HistoryStore).History(ctx, q)
}

// Issue 8, item 2: a sign-in through the gateway begins a login history
// row and signing out completes it with the final times, in both stores.
func TestLoginHistoryFromFlow(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH()
		b := h.browser()
		b.login("alice", "/")
		id := b.sessionID()
		h.clock.Advance(90 * time.Second)
		page, err := h.rt.History(context.Background(), activity.HistoryFilter{User: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 || page.Items[0].SessionID != id || page.Items[0].Status != activity.StatusActive || page.Items[0].Duration != 90 {
			t.Fatalf("history while signed in = %+v, want one active row of 90s", page.Items)
		}
		if page.Items[0].IssuerKey == "" {
			t.Errorf("row has no issuer key: %+v", page.Items[0])
		}
		r := b.Do(http.MethodPost, h.site.URL+"/.gatehouse/logout", url.Values{}, true, "Origin", h.site.URL)
		if r.Status >= 400 {
			t.Fatalf("logout: %d", r.Status)
		}
		page, err = h.rt.History(context.Background(), activity.HistoryFilter{User: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 {
			t.Fatalf("history after logout = %+v", page.Items)
		}
		l := page.Items[0]
		if l.Status != activity.Logout || l.Duration != 90 || l.EndTime.IsZero() || l.Email == "" {
			t.Errorf("row after logout = %+v, want logout after 90s", l)
		}
	})
}
