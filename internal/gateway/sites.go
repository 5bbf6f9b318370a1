package gateway

import (
	"net/http"
	"slices"
	"sync"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// maxSites bounds the site registry: Host headers come from clients, and
// only ones that reached a gateway with a valid session are learned, but
// a catch-all site still must not let them grow memory without bound.
const maxSites = 4096

// siteRegistry knows every gateway of a runtime and which gateway serves
// each site (host) seen so far, so that admin rights can be limited to the
// sites whose own admin rules grant them: an admin of the laxest site is
// not an admin everywhere (issue 6, item 1).
//
// Sites are learned from requests with a live session and from sign-ins,
// that is where sessions and events come from. An instance that has not
// yet served a site does not know it: a restricted admin on that instance
// does not see that site's sessions until it does (fail closed). An admin
// whom every gateway grants rights reaches every site.
type siteRegistry struct {
	mu       sync.RWMutex
	gateways []*Gateway
	hosts    map[string]*Gateway
}

func (sr *siteRegistry) add(g *Gateway) {
	sr.mu.Lock()
	sr.gateways = append(sr.gateways, g)
	sr.mu.Unlock()
}

// learn records that g serves r's site. It costs one comparison when g
// saw the same Host last time.
func (sr *siteRegistry) learn(g *Gateway, r *http.Request) {
	if last := g.lastHost.Load(); last != nil && *last == r.Host {
		return
	}
	host := r.Host
	g.lastHost.Store(&host)
	site := g.site(r)
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.hosts == nil {
		sr.hosts = make(map[string]*Gateway)
	}
	if _, ok := sr.hosts[site]; !ok && len(sr.hosts) >= maxSites {
		return
	}
	sr.hosts[site] = g
}

// reach is the list of sites whose gateways make s an admin, for
// web.Viewer.Sites: nil when every gateway does.
func (sr *siteRegistry) reach(s *session.Session) []string {
	sr.mu.RLock()
	defer sr.mu.RUnlock()
	all := true
	for _, g := range sr.gateways {
		if !g.isAdmin(s) {
			all = false
			break
		}
	}
	if all {
		return nil
	}
	sites := []string{}
	for site, g := range sr.hosts {
		if g.isAdmin(s) {
			sites = append(sites, site)
		}
	}
	slices.Sort(sites)
	return sites
}
