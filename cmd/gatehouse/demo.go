package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "demo",
		Usage: "[--redis <url>] [--listen <addr>] [--idp-listen <addr>] [--admin <addr>] [--cache-ttl <d>] [--client <id,secret,redirect_uri>]",
		Short: "Runs a local playground: dev OpenID provider, sample app, protected site (development only)",
		Long: `
Starts, on loopback only:
  - a development OpenID provider on http://localhost:8081
    (users alice [admin], bob, and carol, whose email is unverified;
    password "demo");
  - a sample "legacy app" with no login of its own;
  - a gatehouse-protected site in front of it on http://localhost:8080,
    with "my sessions" at /.gatehouse/ and the admin page at /.gatehouse/admin/.

Sessions live in memory unless --redis gives a Redis URL. Caddy's admin
endpoint stays on its default (localhost:2019), so the CLI subcommands
(gatehouse sessions, gatehouse revoke, gatehouse events) work against it.

--admin moves Caddy's admin endpoint (to run two demos side by side),
--cache-ttl sets the gatehouse app's cache_ttl, and --client registers
one more client at the provider (another relying party to compare with);
bench/run.sh uses all three.

This is for trying gatehouse out. Never expose it: the provider's users and
passwords are public.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("redis", "", "Redis URL for sessions and events (default: in memory)")
			cmd.Flags().String("listen", "127.0.0.1:8080", "address of the protected site (loopback only)")
			cmd.Flags().String("idp-listen", "127.0.0.1:8081", "address of the development OpenID provider (loopback only)")
			cmd.Flags().String("admin", "", "address of Caddy's admin endpoint (loopback only; default localhost:2019)")
			cmd.Flags().String("cache-ttl", "", "the gatehouse app's cache_ttl; 0 turns the cache off (default: the app's default)")
			cmd.Flags().StringArray("client", nil, "another provider client: id,secret,redirect_uri[,redirect_uri...] (repeatable)")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(runDemo)
		},
	})
}

const banner = `
  ┌──────────────────────────────────────────────────────────────────┐
  │  gatehouse DEMO — DEVELOPMENT ONLY. DO NOT EXPOSE THIS.          │
  │  The OpenID provider below has public users and passwords.       │
  └──────────────────────────────────────────────────────────────────┘

  Protected app     %s/
  My sessions       %s/.gatehouse/
  Admin page        %s/.gatehouse/admin/
  OpenID provider   %s
  Users             alice (admin), bob, carol (unverified email) — password: demo
  Store             %s
  Caddy admin API   http://%s/gatehouse/sessions

  Press Ctrl+C to stop.

`

func runDemo(fl caddycmd.Flags) (int, error) {
	opts := demoOptions{
		Listen:    fl.String("listen"),
		IDPListen: fl.String("idp-listen"),
		Redis:     fl.String("redis"),
		Secret:    os.Getenv("GATEHOUSE_SECRET"),
		Admin:     fl.String("admin"),
	}
	if v := fl.String("cache-ttl"); v != "" {
		ttl, err := caddy.ParseDuration(v)
		if err != nil || ttl < 0 {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("--cache-ttl %q: want a duration, 0 for no cache", v)
		}
		// 0 turns the cache off, as "cache_ttl 0" does in a Caddyfile.
		opts.CacheTTL = max(ttl, time.Nanosecond)
	}
	clients, err := fl.GetStringArray("client")
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("reading --client: %w", err)
	}
	for _, c := range clients {
		cl, err := parseClientFlag(c)
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		opts.Clients = append(opts.Clients, cl)
	}
	d, err := startDemo(opts)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	defer d.Close()
	storeDesc := "in memory (lost on exit)"
	if d.opts.Redis != "" {
		storeDesc = d.opts.Redis
	}
	adminAddr := "localhost:2019"
	if d.opts.Admin != "" {
		adminAddr = d.opts.Admin
	}
	fmt.Fprintf(os.Stderr, banner, d.SiteURL, d.SiteURL, d.SiteURL, d.IssuerURL, storeDesc, adminAddr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	fmt.Fprintln(os.Stderr, "\nstopping…")
	if err := caddy.Stop(); err != nil {
		return caddy.ExitCodeFailedQuit, err
	}
	return caddy.ExitCodeSuccess, nil
}

// parseClientFlag reads a --client value: id,secret,redirect_uri[,...].
func parseClientFlag(v string) (devidp.Client, error) {
	parts := strings.Split(v, ",")
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" || slices.Contains(parts[2:], "") {
		return devidp.Client{}, fmt.Errorf("--client %q: want id,secret,redirect_uri[,redirect_uri...]", v)
	}
	return devidp.Client{ID: parts[0], Secret: parts[1], RedirectURIs: parts[2:]}, nil
}

type demoOptions struct {
	// Listen and IDPListen are loopback addresses; port 0 picks a free
	// one (tests).
	Listen, IDPListen string
	// Redis is a store URL; empty means the in-memory store.
	Redis string
	// Secret for a Redis store; random when empty.
	Secret string
	// Admin is Caddy's admin endpoint address. Default: Caddy's default.
	Admin string
	// GeoIP is an optional City database path.
	GeoIP string
	// CacheTTL is the app's cache_ttl; zero means its default.
	CacheTTL time.Duration
	// Clients are more provider clients besides the demo site's.
	Clients []devidp.Client
}

// demo is a running playground: provider, sample app and Caddy.
type demo struct {
	opts      demoOptions
	SiteURL   string
	IssuerURL string
	IDP       *devidp.Provider
	closers   []func() error
}

// Close stops the provider and the sample app; caddy.Stop stops Caddy.
func (d *demo) Close() {
	for _, c := range d.closers {
		_ = c()
	}
}

// startDemo starts the provider, the sample app and Caddy with gatehouse
// in front of the app.
func startDemo(opts demoOptions) (*demo, error) {
	addrs := []string{opts.Listen, opts.IDPListen}
	if opts.Admin != "" {
		addrs = append(addrs, opts.Admin)
	}
	for _, a := range addrs {
		if err := mustBeLoopback(a); err != nil {
			return nil, err
		}
	}
	d := &demo{opts: opts}
	idpLn, err := net.Listen("tcp", opts.IDPListen)
	if err != nil {
		return nil, fmt.Errorf("starting development provider: %w", err)
	}
	d.closers = append(d.closers, idpLn.Close)
	d.IssuerURL = "http://" + publicHost(idpLn.Addr().String())
	listen, err := resolvePort(opts.Listen, opts.Admin)
	if err != nil {
		d.Close()
		return nil, err
	}
	d.SiteURL = "http://" + publicHost(listen)

	idp, err := startProvider(d.IssuerURL, idpLn)
	if err != nil {
		d.Close()
		return nil, err
	}
	d.IDP = idp
	clientSecret := randomHex(16)
	var redirects, postLogout []string
	for _, origin := range siteOrigins(listen) {
		redirects = append(redirects, origin+"/.gatehouse/callback")
		postLogout = append(postLogout, origin+"/.gatehouse/signed-out")
	}
	idp.AddClient(devidp.Client{
		ID:                     "gatehouse-demo",
		Secret:                 clientSecret,
		RedirectURIs:           redirects,
		PostLogoutRedirectURIs: postLogout,
		BackchannelLogoutURI:   d.SiteURL + "/.gatehouse/backchannel-logout",
	})
	for _, c := range opts.Clients {
		idp.AddClient(c)
	}

	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("starting sample app: %w", err)
	}
	d.closers = append(d.closers, appLn.Close)
	go func() { _ = http.Serve(appLn, http.HandlerFunc(sampleApp)) }()

	store, secret := "memory", ""
	if opts.Redis != "" {
		store, secret = opts.Redis, opts.Secret
		if secret == "" {
			// Fine for a demo; instances sharing a store need one secret.
			secret = randomHex(32)
		}
	}
	cfg, err := demoConfig(demoConfigInput{
		store: store, secret: secret, listen: listen, issuer: d.IssuerURL,
		clientSecret: clientSecret, upstream: appLn.Addr().String(), admin: opts.Admin, geoip: opts.GeoIP,
		cacheTTL: opts.CacheTTL,
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	if err := caddy.Load(cfg, true); err != nil {
		d.Close()
		return nil, fmt.Errorf("starting caddy: %w", err)
	}
	return d, nil
}

// resolvePort turns port 0 into a free port: the provider must know the
// site's exact redirect URI before Caddy listens. The port must not be
// the admin endpoint's: Caddy listens with SO_REUSEPORT, so the site and
// the admin endpoint could both bind it, and the kernel would share the
// site's connections between them.
func resolvePort(addr, admin string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	if admin == "" {
		admin = caddy.DefaultAdminListen
	}
	_, adminPort, _ := net.SplitHostPort(admin)
	if port != "0" {
		if port == adminPort {
			return "", fmt.Errorf("address %q: the site and Caddy's admin endpoint (%s) need different ports", addr, admin)
		}
		return addr, nil
	}
	for range 10 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", fmt.Errorf("finding a free port: %w", err)
		}
		got := ln.Addr().String()
		_ = ln.Close()
		if _, p, _ := net.SplitHostPort(got); p != adminPort {
			return got, nil
		}
	}
	return "", fmt.Errorf("finding a free port other than the admin endpoint's %s", admin)
}

func mustBeLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q: the demo listens on loopback only", addr)
	}
	return nil
}

// publicHost is how a browser on this machine spells an address: the
// provider's issuer must match what the browser and gatehouse both use.
func publicHost(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return "localhost:" + port
}

func siteOrigins(listen string) []string {
	_, port, _ := net.SplitHostPort(listen)
	return []string{"http://localhost:" + port, "http://127.0.0.1:" + port}
}

func startProvider(issuer string, ln net.Listener) (*devidp.Provider, error) {
	idp, err := devidp.New(devidp.Config{Issuer: issuer, Users: devidp.DemoUsers()})
	if err != nil {
		return nil, fmt.Errorf("creating development provider: %w", err)
	}
	srv := &http.Server{Handler: idp, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "development provider:", err)
		}
	}()
	return idp, nil
}

// demoConfig is the Caddy JSON config of the demo: the gatehouse app, and
// one server on loopback with gatehouse in front of reverse_proxy.
type demoConfigInput struct {
	store, secret, listen, issuer, clientSecret, upstream, admin, geoip string
	cacheTTL                                                            time.Duration
}

func demoConfig(in demoConfigInput) ([]byte, error) {
	app := map[string]any{"store": in.store}
	if in.secret != "" {
		app["secret"] = in.secret
	}
	if in.geoip != "" {
		app["geoip"] = in.geoip
	}
	if in.cacheTTL > 0 {
		app["cache_ttl"] = in.cacheTTL.String()
	}
	cfg := map[string]any{
		"apps": map[string]any{
			"gatehouse": app,
			"http": map[string]any{
				"servers": map[string]any{
					"demo": map[string]any{
						"listen":          []string{in.listen},
						"automatic_https": map[string]any{"disable": true},
						"routes": []any{map[string]any{
							"handle": []any{
								map[string]any{
									"handler":       "gatehouse",
									"issuer":        in.issuer,
									"client_id":     "gatehouse-demo",
									"client_secret": in.clientSecret,
									"scopes":        []string{"openid", "email", "profile", "groups", "offline_access"},
									"admin_groups":  []string{"gatehouse-admins"},
								},
								map[string]any{
									"handler":   "reverse_proxy",
									"upstreams": []any{map[string]any{"dial": in.upstream}},
								},
							},
						}},
					},
				},
			},
		},
	}
	// The demo's config holds a client secret and is rebuilt on every
	// start: never autosave it.
	admin := map[string]any{"config": map[string]any{"persist": false}}
	if in.admin != "" {
		admin["listen"] = in.admin
	}
	cfg["admin"] = admin
	return json.Marshal(cfg)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sampleApp is the "legacy app": it has no login of its own and trusts
// the identity headers gatehouse sets.
func sampleApp(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/favicon.ico" {
		http.NotFound(w, r)
		return
	}
	data := map[string]any{
		"User":   r.Header.Get("X-Forwarded-User"),
		"Email":  r.Header.Get("X-Forwarded-Email"),
		"Name":   r.Header.Get("X-Forwarded-Preferred-Username"),
		"Groups": strings.Split(r.Header.Get("X-Forwarded-Groups"), ","),
		"Path":   r.URL.RequestURI(),
		"Admin":  strings.Contains(","+r.Header.Get("X-Forwarded-Groups")+",", ",gatehouse-admins,"),
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := samplePage.Execute(w, data); err != nil {
		http.Error(w, "rendering page", http.StatusInternalServerError)
	}
}

var samplePage = template.Must(template.New("app").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Inventory — sample legacy app</title>
<style>
body{margin:0;font:15px/1.5 Georgia,serif;background:#fbf8f1;color:#2b2b2b}
header{background:#6b4f2a;color:#fff;padding:.9rem 1.5rem;font:600 1.1rem system-ui,sans-serif}
main{max-width:46rem;margin:2rem auto;padding:0 1.25rem}
.card{background:#fff;border:1px solid #e6dfcf;border-radius:8px;padding:1.25rem 1.5rem;margin-bottom:1.25rem}
dt{font:600 .8rem system-ui,sans-serif;color:#7a6a50;text-transform:uppercase;letter-spacing:.05em;margin-top:.6rem}
dd{margin:0}code{background:#f3eee2;padding:.1rem .35rem;border-radius:4px}
nav a{margin-right:1rem;color:#6b4f2a}
button{font:inherit;background:none;border:0;color:#6b4f2a;text-decoration:underline;cursor:pointer;padding:0}
</style></head><body>
<header>Inventory 1998 — a legacy app with no login of its own</header>
<main>
<div class="card">
<p>Hello <strong>{{.Name}}</strong>. This page comes from the upstream app; it knows who you are only from the headers gatehouse set:</p>
<dl>
<dt>X-Forwarded-User</dt><dd><code>{{.User}}</code></dd>
<dt>X-Forwarded-Email</dt><dd><code>{{.Email}}</code></dd>
<dt>X-Forwarded-Groups</dt><dd>{{range .Groups}}<code>{{.}}</code> {{end}}</dd>
<dt>Requested</dt><dd><code>{{.Path}}</code></dd>
</dl>
</div>
<nav class="card"><a href="/.gatehouse/">My sessions</a>{{if .Admin}}<a href="/.gatehouse/admin/">Admin</a>{{end}}
<form method="post" action="/.gatehouse/logout" style="display:inline"><button type="submit">Sign out</button></form></nav>
</main></body></html>`))
