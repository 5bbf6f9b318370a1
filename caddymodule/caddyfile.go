package caddymodule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/gatehouse-proxy/gatehouse/internal/gateway"
	"github.com/gatehouse-proxy/gatehouse/internal/geo"
	"github.com/gatehouse-proxy/gatehouse/internal/policy"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("gatehouse", parseGlobal)
	httpcaddyfile.RegisterHandlerDirective("gatehouse", parseHandler)
	// Spares users an `order` line: sign-in must come before proxying.
	httpcaddyfile.RegisterDirectiveOrder("gatehouse", httpcaddyfile.Before, "reverse_proxy")
}

// parseGlobal sets up the app from the global options block:
//
//	{
//		gatehouse {
//			store          memory | redis://... | rediss://... | redis-sentinel://... | redis-cluster://...
//			secret         {env.GATEHOUSE_SECRET}
//			geoip          /var/lib/GeoIP/GeoLite2-City.mmdb
//			cache_ttl      5s
//			touch_interval 30s
//			retention      90d
//			timezone       Europe/Amsterdam
//			max_events     <n>
//			allow_ip       <cidr...>
//			deny_ip        <cidr...>
//			alert_webhook  <url>
//			alert_on       <event type...>
//			alerts {
//				new_country       on | off
//				new_device        on | off
//				impossible_travel <km/h> | off
//				shared_ip         <n> <window> | off
//				failure_burst     <n> <window> | off
//			}
//		}
//	}
func parseGlobal(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("gatehouse global options may appear only once")
	}
	app := new(App)
	d.Next() // the option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	seen := map[string]bool{}
	var storeAt, alertOnAt caddyfile.Token
	for d.NextBlock(0) {
		key := d.Val()
		if seen[key] {
			return nil, d.Errf("duplicate subdirective %q", key)
		}
		seen[key] = true
		switch key {
		case "store":
			storeAt = d.Token()
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			if !isMemory(v) && !strings.Contains(v, "{") {
				if err := checkStoreURL(v); err != nil {
					return nil, d.Errf("store: %v", err)
				}
			}
			app.Store = v
		case "secret":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			if !strings.Contains(v, "{") && len(v) < session.MinSecretLen {
				return nil, d.Errf("secret must be at least %d bytes; use a placeholder such as {env.GATEHOUSE_SECRET}", session.MinSecretLen)
			}
			app.Secret = v
		case "geoip":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			app.GeoIP = v
		case "cache_ttl":
			if err := durationArg(d, &app.CacheTTL); err != nil {
				return nil, err
			}
			if app.CacheTTL == 0 {
				// "cache_ttl 0": no cache, every request reads the store.
				// JSON's 0 is the default, so it becomes 1ns there.
				app.CacheTTL = caddy.Duration(time.Nanosecond)
			}
		case "touch_interval":
			if err := durationArg(d, &app.TouchInterval); err != nil {
				return nil, err
			}
		case "retention":
			if err := durationArg(d, &app.Retention); err != nil {
				return nil, err
			}
		case "timezone":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			if _, err := loadZone(v); err != nil {
				return nil, d.Errf("timezone: %v", err)
			}
			app.Timezone = v
		case "max_events":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return nil, d.Errf("max_events: want a positive whole number of events, got %q", v)
			}
			app.MaxEvents = n
		case "allow_ip", "deny_ip":
			list, err := someArgs(d)
			if err != nil {
				return nil, err
			}
			if _, err := policy.ParsePrefixes(list); err != nil {
				return nil, d.Errf("%s: %v", key, err)
			}
			if key == "allow_ip" {
				app.AllowIP = list
			} else {
				app.DenyIP = list
			}
		case "alerts":
			r, err := parseAlertsBlock(d)
			if err != nil {
				return nil, err
			}
			app.Alerts = r
		case "alert_webhook":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			if !strings.Contains(v, "{") {
				if err := checkWebhookURL(v); err != nil {
					return nil, d.Err(err.Error())
				}
			}
			app.AlertWebhook = v
		case "alert_on":
			alertOnAt = d.Token()
			list, err := someArgs(d)
			if err != nil {
				return nil, err
			}
			if err := checkAlertOn(list); err != nil {
				return nil, d.Err(err.Error())
			}
			app.AlertOn = list
		default:
			return nil, d.Errf("unrecognized gatehouse option %q", key)
		}
	}
	// The rules that join two options, which Provision applies too, so
	// that `caddy adapt` names the line (found by FuzzParseGlobal). A
	// placeholder store may expand to memory: Provision decides.
	if !isMemory(app.Store) && !strings.Contains(app.Store, "{") && app.Secret == "" {
		return nil, fmt.Errorf("gatehouse: a secret is required with a shared store (all instances must use the same one), at %s:%d", storeAt.File, storeAt.Line)
	}
	if len(app.AlertOn) > 0 && app.AlertWebhook == "" {
		return nil, fmt.Errorf("gatehouse: alert_on needs alert_webhook, at %s:%d", alertOnAt.File, alertOnAt.Line)
	}
	return httpcaddyfile.App{
		Name:  "gatehouse",
		Value: caddyconfig.JSON(app, nil),
	}, nil
}

func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	gatehouse {
//		issuer        <url>
//		client_id     <id>
//		client_secret <secret>
//		scopes        <scope...>
//		path_prefix   <path>
//		idle_timeout  <duration>|0
//		max_lifetime  <duration>
//		allow_ip      <cidr...>
//		deny_ip       <cidr...>
//		allow_country <code...>
//		deny_country  <code...>
//		max_sessions  <n>
//		bind_ip       off|exact|subnet
//		allow_groups  <group...>
//		allow_emails  <email...>
//		allow_domains <domain...>
//		require_mfa   on|off
//		mfa_acr       <acr...>
//		admin_groups  <group...>
//		admin_emails  <email...>
//		auditor_groups <group...>
//		auditor_emails <email...>
//		groups_claim  <claim>
//		cookie_name   <name>
//		cookie_domain <domain>
//		cookie_secure on|off
//		insecure_unverified_email [on|off]
//		jwt_header    <header name>
//		refresh       on|off
//		pass_access_token on|off
//	}
//
// Every value is checked here, so a mistake is reported with its line at
// `caddy adapt` time.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	start := d.Token()
	var passAt caddyfile.Token
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		key := d.Val()
		if seen[key] {
			return d.Errf("duplicate subdirective %q", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "issuer":
			h.Issuer, err = oneArg(d)
		case "client_id":
			h.ClientID, err = oneArg(d)
		case "client_secret":
			h.ClientSecret, err = oneArg(d)
		case "scopes":
			h.Scopes, err = someArgs(d)
		case "path_prefix":
			if h.PathPrefix, err = oneArg(d); err == nil {
				if perr := checkPathPrefix(h.PathPrefix); perr != nil {
					err = d.Errf("path_prefix: %v", perr)
				}
			}
		case "idle_timeout":
			var v caddy.Duration
			if err = durationArg(d, &v); err == nil {
				h.IdleTimeout = &v
			}
		case "max_lifetime":
			err = durationArg(d, &h.MaxLifetime)
		case "allow_ip", "deny_ip":
			var list []string
			if list, err = someArgs(d); err == nil {
				if _, perr := policy.ParsePrefixes(list); perr != nil {
					err = d.Errf("%s: %v", key, perr)
				}
			}
			if key == "allow_ip" {
				h.AllowIP = list
			} else {
				h.DenyIP = list
			}
		case "allow_country", "deny_country":
			var list []string
			if list, err = someArgs(d); err == nil {
				for _, c := range list {
					if !geo.ValidCountry(strings.ToUpper(c)) {
						err = d.Errf("%s: unknown country code %q (want ISO 3166-1 alpha-2, e.g. NL)", key, c)
						break
					}
				}
			}
			if key == "allow_country" {
				h.AllowCountry = list
			} else {
				h.DenyCountry = list
			}
		case "max_sessions":
			h.MaxSessions, err = maxSessionsArg(d)
		case "bind_ip":
			if h.BindIP, err = oneArg(d); err == nil {
				if _, perr := policy.ParseBind(h.BindIP); perr != nil {
					err = d.Err(perr.Error())
				}
			}
		case "allow_groups":
			h.AllowGroups, err = someArgs(d)
		case "allow_emails":
			h.AllowEmails, err = someArgs(d)
		case "allow_domains":
			h.AllowDomains, err = someArgs(d)
		case "require_mfa":
			h.RequireMFA, err = onOffArg(d)
		case "mfa_acr":
			var acr []string
			if acr, err = someArgs(d); err == nil {
				// acr_values is one space-separated parameter.
				h.MFAACR = strings.Join(acr, " ")
			}
		case "admin_groups":
			h.AdminGroups, err = someArgs(d)
		case "admin_emails":
			h.AdminEmails, err = someArgs(d)
		case "auditor_groups":
			h.AuditorGroups, err = someArgs(d)
		case "auditor_emails":
			h.AuditorEmails, err = someArgs(d)
		case "groups_claim":
			h.GroupsClaim, err = oneArg(d)
		case "cookie_name":
			if h.CookieName, err = oneArg(d); err == nil && !validCookieName(h.CookieName) {
				err = d.Errf("cookie_name %q is not a valid cookie name", h.CookieName)
			}
		case "cookie_domain":
			h.CookieDomain, err = oneArg(d)
		case "cookie_secure":
			// No bare form: absent means "by scheme", so a bare
			// cookie_secure would read as neither on nor off.
			var v bool
			if v, err = onOffArg(d); err == nil {
				h.CookieSecure = &v
			}
		case "insecure_unverified_email":
			// Bare means on, as SPEC writes it: "unless the site sets
			// insecure_unverified_email".
			if !d.NextArg() {
				h.InsecureUnverifiedEmail = true
				break
			}
			d.Prev()
			h.InsecureUnverifiedEmail, err = onOffArg(d)
		case "refresh":
			h.Refresh, err = onOffArg(d)
		case "pass_access_token":
			passAt = d.Token()
			h.PassAccessToken, err = onOffArg(d)
		case "jwt_header":
			if h.JWTHeader, err = oneArg(d); err == nil {
				if cerr := gateway.CheckJWTHeader(h.JWTHeader); cerr != nil {
					err = d.Errf("%v", cerr)
				}
			}
		default:
			return d.Errf("unrecognized gatehouse subdirective %q", key)
		}
		if err != nil {
			return err
		}
	}
	// Name the directive's line, not the closing brace.
	if h.Issuer == "" {
		return fmt.Errorf("gatehouse: missing issuer, at %s:%d", start.File, start.Line)
	}
	if h.ClientID == "" {
		return fmt.Errorf("gatehouse: missing client_id, at %s:%d", start.File, start.Line)
	}
	if h.PassAccessToken && !h.Refresh {
		return fmt.Errorf("gatehouse: pass_access_token needs refresh on, at %s:%d", passAt.File, passAt.Line)
	}
	return nil
}

func oneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

// onOffArg reads the one argument of a switch: on or off.
func onOffArg(d *caddyfile.Dispenser) (bool, error) {
	key := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return false, err
	}
	switch v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, d.Errf("%s: want on or off, got %q", key, v)
}

func someArgs(d *caddyfile.Dispenser) ([]string, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.ArgErr()
	}
	return args, nil
}

func durationArg(d *caddyfile.Dispenser, out *caddy.Duration) error {
	key := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return d.Errf("%s: invalid duration %q (use a number with a unit: 30s, 15m, 12h, 90d)", key, v)
	}
	if dur < 0 {
		return d.Errf("%s: duration must not be negative", key)
	}
	*out = caddy.Duration(dur)
	return nil
}

func validCookieName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)

// maxSessionsArg reads max_sessions: a whole number of sessions, 0 for
// no limit.
func maxSessionsArg(d *caddyfile.Dispenser) (int, error) {
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, d.Errf("max_sessions: want a whole number of sessions (0 for no limit), got %q", v)
	}
	return n, nil
}
