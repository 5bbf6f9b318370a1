package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// roles asks st's admin handler (viewerEcho) what the gateway told it
// about b's rights.
func roles(t *testing.T, b *browser, siteURL string) (admin, auditor bool, sites []string) {
	t.Helper()
	r := b.Do(http.MethodGet, siteURL+"/.gatehouse/admin/", nil, true)
	var v struct {
		Admin   bool     `json:"admin"`
		Auditor bool     `json:"auditor"`
		Sites   []string `json:"sites"`
	}
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil {
		t.Fatalf("viewer on %s: %d %.200s", siteURL, r.Status, r.Body)
	}
	return v.Admin, v.Auditor, v.Sites
}

// Issue 7, item 6: auditor_groups and auditor_emails make a read-only
// admin whose reach follows the same per-site rules as an admin's: the
// sites whose every serving scope grants them admin or auditor rights.
func TestAuditorReachFollowsEachSitesRules(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH() // admin_groups gatehouse-admins, no auditors
		audited := h.addSite(func(c *Config) { c.AuditorGroups = []string{"staff"} })
		byEmail := h.addSite(func(c *Config) {
			c.AuditorEmails = []string{"BOB@example.com", "carol@example.com"}
		})
		staffAdmin := h.addSite(func(c *Config) { c.AdminGroups = []string{"staff"} }) // alice and bob
		other := h.addSite(func(c *Config) { c.AdminGroups = []string{"other-admins"} })
		all := []*site{audited, byEmail, staffAdmin, other}

		alice, bob, carol := h.browser(), h.browser(), h.browser()
		alice.login("alice", "/")
		bob.login("bob", "/")
		carol.Login(audited.URL(), "/", "carol")
		for _, st := range all {
			parseEcho(t, alice.Do(http.MethodGet, st.URL()+"/", nil, true))
		}
		host := func(st *site) string { return mustURL(st.URL()).Host }
		base := mustURL(h.site.URL).Host

		tests := []struct {
			name            string
			b               *browser
			on              *site
			admin, auditor  bool
			reach, notReach []string
		}{
			{"bob audits by group", bob, audited, false, true,
				[]string{host(audited), host(byEmail), host(staffAdmin)}, []string{base, host(other)}},
			{"bob audits by verified email", bob, byEmail, false, true,
				[]string{host(audited), host(byEmail), host(staffAdmin)}, []string{base, host(other)}},
			// An admin's reach is where they may end sessions: it does not
			// widen to the sites they only audit.
			{"bob administers", bob, staffAdmin, true, false,
				[]string{host(staffAdmin)}, []string{base, host(audited), host(byEmail), host(other)}},
			{"alice is admin, not auditor", alice, audited, true, false,
				[]string{base, host(audited), host(byEmail), host(staffAdmin)}, []string{host(other)}},
			// Carol's email is not verified.
			{"carol's unverified email", carol, byEmail, false, false, nil, nil},
			{"bob on a site without auditors", bob, other, false, false, nil, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				admin, auditor, sites := roles(t, tt.b, tt.on.URL())
				if admin != tt.admin || auditor != tt.auditor {
					t.Fatalf("admin %v, auditor %v; want %v, %v", admin, auditor, tt.admin, tt.auditor)
				}
				if !admin && !auditor {
					if len(sites) != 0 {
						t.Errorf("sites = %q for a viewer without rights", sites)
					}
					return
				}
				if sites == nil {
					t.Fatalf("sites = nil (every site); want %q", tt.reach)
				}
				for _, s := range tt.reach {
					if !slices.Contains(sites, s) {
						t.Errorf("sites = %q, missing %s", sites, s)
					}
				}
				for _, s := range tt.notReach {
					if slices.Contains(sites, s) {
						t.Errorf("sites = %q, includes %s", sites, s)
					}
				}
			})
		}

		// A second config serving the audited site without naming bob
		// narrows his reach there, as it would an admin's; alice, admin
		// under both, keeps it.
		if st := doHost(t, bob, h.site.URL+"/", host(audited)); st != http.StatusOK {
			t.Fatalf("request with the audited site's Host: %d", st)
		}
		if _, _, sites := roles(t, bob, audited.URL()); slices.Contains(sites, host(audited)) {
			t.Errorf("bob still audits %s, now also served by rules without auditors: %q", host(audited), sites)
		}
		if _, _, sites := roles(t, alice, audited.URL()); sites != nil && !slices.Contains(sites, host(audited)) {
			t.Errorf("alice lost %s: %q", host(audited), sites)
		}
	})
}

// Issue 7, item 6: auditor rules are part of a scope's name, or an
// instance naming other auditors under the same admin rules would grant
// its auditors every site of that scope; and without auditors the name
// is the one issue 6 recorded, so an upgrade keeps admins' reach.
func TestAdminScopeNamesAuditorRules(t *testing.T) {
	base := Config{Issuer: "https://idp.example", AdminGroups: []string{"b", "a"}, AdminEmails: []string{"Ops@Example.com"}}
	// The scope as issue 6 computed it.
	legacy := func(cfg *Config) string {
		groups := slices.Clone(cfg.AdminGroups)
		slices.Sort(groups)
		emails := make([]string, len(cfg.AdminEmails))
		for i, e := range cfg.AdminEmails {
			emails[i] = session.EmailKey(e)
		}
		slices.Sort(emails)
		h := sha256.New()
		fmt.Fprintf(h, "%q\n%q\n%q\n", cfg.Issuer, groups, emails)
		return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
	}
	if got, want := adminScope(&base), legacy(&base); got != want {
		t.Errorf("scope without auditors = %s, want the recorded %s", got, want)
	}
	with := func(groups, emails []string) string {
		c := base
		c.AuditorGroups, c.AuditorEmails = groups, emails
		return adminScope(&c)
	}
	if with([]string{"sec"}, nil) == adminScope(&base) {
		t.Error("auditor groups do not change the scope")
	}
	if with(nil, []string{"x@example.com"}) == adminScope(&base) {
		t.Error("auditor emails do not change the scope")
	}
	if with([]string{"sec"}, nil) == with(nil, []string{"sec"}) {
		t.Error("auditor groups and emails name the same scope")
	}
	if with([]string{"a", "sec"}, []string{"X@example.com"}) != with([]string{"sec", "a"}, []string{"x@EXAMPLE.com"}) {
		t.Error("order or case of auditor rules changes the scope")
	}
	c := base
	c.AdminGroups = append(slices.Clone(base.AdminGroups), "sec")
	if adminScope(&c) == with([]string{"sec"}, nil) {
		t.Error("an admin group and an auditor group name the same scope")
	}
}
