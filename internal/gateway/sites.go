package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/policy"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// siteRegistry tells which admins and auditors reach which sites, so that admin rights
// reach only the sites whose own admin rules grant them: an admin of the
// laxest site is not an admin everywhere (issue 6, item 1).
//
// A gateway's admin rules have a scope: a name of its issuer, admin
// groups and admin emails, and auditor groups and emails when it has any. A site is served by the gateways that have
// served it a signed-in request or a sign-in; the store records each
// (site, scope) pair, so that every instance, whatever its own config,
// knows them all. An admin reaches a site when every scope serving it is
// one that grants them rights here: a client that sends one site's Host
// header to another gateway (a catch-all site, another port) adds that
// gateway's scope to the site, which can only narrow who reaches it, never
// widen it. When every recorded site is reached, the reach is "every site"
// (nil), which also covers sessions from before sites were recorded.
type siteRegistry struct {
	mu       sync.RWMutex
	gateways []*Gateway
	// known are the pairs this instance has recorded, so that the store
	// is written once per pair and process.
	known map[string]map[string]bool
}

func (sr *siteRegistry) add(g *Gateway) {
	sr.mu.Lock()
	sr.gateways = append(sr.gateways, g)
	sr.mu.Unlock()
}

// adminScope names a gateway's admin and auditor rules; equal rules (the
// same groups and, case aside, emails, for the same provider) name the
// same scope on every instance. Auditor rules are part of the name because
// a scope stands for everything it grants: were they left out, an instance
// naming other auditors under the same admin rules would grant its
// auditors every site of that scope. One scope for both keeps one registry
// entry per site and config. Without auditor rules the name is what it was
// before auditors existed, so the pairs already recorded in the store keep
// their meaning (a changed name would leave the old one recorded, serving
// no one, and put those sites out of every admin's reach).
func adminScope(cfg *Config) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q\n%q\n%q\n", cfg.Issuer, sortedGroups(cfg.AdminGroups), emailKeys(cfg.AdminEmails))
	if len(cfg.AuditorGroups) > 0 || len(cfg.AuditorEmails) > 0 {
		fmt.Fprintf(h, "auditors\n%q\n%q\n", sortedGroups(cfg.AuditorGroups), emailKeys(cfg.AuditorEmails))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

func sortedGroups(groups []string) []string {
	groups = slices.Clone(groups)
	slices.Sort(groups)
	return groups
}

func emailKeys(emails []string) []string {
	keys := make([]string, len(emails))
	for i, e := range emails {
		keys[i] = session.EmailKey(e)
	}
	slices.Sort(keys)
	return keys
}

// isAuditor reports whether this site's auditor rules make s an auditor
// here; as for admins, an unverified email grants nothing.
func (g *Gateway) isAuditor(s *session.Session) bool {
	return policy.Member(s.Groups, g.Email(s), g.cfg.AuditorGroups, g.cfg.AuditorEmails)
}

// learn records that g serves r's site. It costs one comparison when g
// saw the same Host last time, and a store write only for a pair new to
// this process (once per site and config, so it is done in the request
// rather than in a goroutine that could outlive the store).
func (sr *siteRegistry) learn(g *Gateway, r *http.Request) {
	if last := g.lastHost.Load(); last != nil && *last == r.Host {
		return
	}
	host := r.Host
	g.lastHost.Store(&host)
	site := g.site(r)
	sr.mu.RLock()
	done := sr.known[site][g.scope]
	sr.mu.RUnlock()
	if done {
		return
	}
	sr.mu.RLock()
	full := sr.known[site] == nil && len(sr.known) >= session.MaxSites
	sr.mu.RUnlock()
	if full {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
	defer cancel()
	if err := g.rt.store.AddSite(ctx, site, g.scope); err != nil {
		g.rt.cfg.OnError(fmt.Errorf("recording site %q: %w", site, err))
		// A later request tries again.
		g.lastHost.Store(nil)
		return
	}
	sr.mu.Lock()
	if sr.known == nil {
		sr.known = make(map[string]map[string]bool)
	}
	if sr.known[site] == nil {
		sr.known[site] = make(map[string]bool)
	}
	sr.known[site][g.scope] = true
	sr.mu.Unlock()
}

// reach is the list of sites s administers, or with audit the sites s
// administers or audits, for web.Viewer.Sites: nil when that is every
// recorded site. An auditor's reach follows the same rule as an admin's,
// a scope granting either right: every scope serving a site must grant
// one, so a site is audited only where each of its configs names the
// auditor (or makes them an admin). When the store cannot say, only what
// this instance recorded counts.
func (sr *siteRegistry) reach(ctx context.Context, st session.Store, s *session.Session, audit bool) []string {
	sr.mu.RLock()
	grants := map[string]bool{}
	for _, g := range sr.gateways {
		if g.isAdmin(s) || audit && g.isAuditor(s) {
			grants[g.scope] = true
		}
	}
	all := map[string][]string{}
	for site, scopes := range sr.known {
		for sc := range scopes {
			all[site] = append(all[site], sc)
		}
	}
	sr.mu.RUnlock()
	if len(grants) == 0 {
		return []string{}
	}
	if recorded, err := st.SiteScopes(ctx); err == nil {
		for site, scopes := range recorded {
			all[site] = append(all[site], scopes...)
		}
	}
	sites := []string{}
	every := true
	for site, scopes := range all {
		ok := true
		for _, sc := range scopes {
			ok = ok && grants[sc]
		}
		if ok {
			sites = append(sites, site)
		} else {
			every = false
		}
	}
	if every {
		return nil
	}
	slices.SortFunc(sites, strings.Compare)
	return sites
}
