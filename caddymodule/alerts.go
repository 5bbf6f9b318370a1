package caddymodule

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/alerts"
)

// AlertRules configures the anomaly rules, evaluated in the background at
// every sign-in (and failure_burst at every failed one) against the
// history in the store. Each value is written as in the Caddyfile; an
// empty one takes the default.
type AlertRules struct {
	// NewCountry flags a user's first sign-in from a country after one or
	// more earlier ones: "on" or "off". Default: on.
	NewCountry string `json:"new_country,omitempty"`
	// NewDevice flags a sign-in from a browser+OS pair not seen for the
	// user before: "on" or "off". Default: on.
	NewDevice string `json:"new_device,omitempty"`
	// ImpossibleTravel flags consecutive sign-ins more than 300 km apart
	// whose great-circle speed is above this many km/h, or "off".
	// Default: 900.
	ImpossibleTravel string `json:"impossible_travel,omitempty"`
	// SharedIP flags "<n> <window>": n distinct users signing in from one
	// IP within the window; or "off". Default: "3 1h".
	SharedIP string `json:"shared_ip,omitempty"`
	// FailureBurst flags "<n> <window>": n login_failed events for one
	// user or from one IP within the window; or "off". Default: "5 10m".
	FailureBurst string `json:"failure_burst,omitempty"`
}

// rules turns the configuration into alerts.Rules, starting from the
// defaults.
func (r *AlertRules) rules() (alerts.Rules, error) {
	out := alerts.Defaults()
	if r == nil {
		return out, nil
	}
	var err error
	if out.NewCountry, err = alertSwitch("new_country", r.NewCountry, out.NewCountry); err != nil {
		return out, err
	}
	if out.NewDevice, err = alertSwitch("new_device", r.NewDevice, out.NewDevice); err != nil {
		return out, err
	}
	if v := strings.TrimSpace(r.ImpossibleTravel); v == "off" {
		out.TravelKmh = 0
	} else if v != "" {
		kmh, err := strconv.ParseFloat(v, 64)
		if err != nil || kmh <= 0 || kmh > 1e6 {
			return out, fmt.Errorf("impossible_travel: want a speed in km/h (such as 900) or off, got %q", v)
		}
		out.TravelKmh = kmh
	}
	if out.SharedIPUsers, out.SharedIPWindow, err = alertThreshold("shared_ip", r.SharedIP, out.SharedIPUsers, out.SharedIPWindow, 2); err != nil {
		return out, err
	}
	if out.FailureBurst, out.FailureWindow, err = alertThreshold("failure_burst", r.FailureBurst, out.FailureBurst, out.FailureWindow, 1); err != nil {
		return out, err
	}
	return out, nil
}

func alertSwitch(name, v string, def bool) (bool, error) {
	switch strings.TrimSpace(v) {
	case "":
		return def, nil
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("%s: want on or off, got %q", name, v)
}

// alertThreshold parses "<n> <window>" or "off"; n is at least min (two
// users make a shared IP, one failure can be a burst of one).
func alertThreshold(name, v string, n int, window time.Duration, min int) (int, time.Duration, error) {
	f := strings.Fields(v)
	switch {
	case len(f) == 0:
		return n, window, nil
	case len(f) == 1 && f[0] == "off":
		return 0, 0, nil
	case len(f) != 2:
		return 0, 0, fmt.Errorf("%s: want a count and a window (such as 3 1h) or off, got %q", name, v)
	}
	c, err := strconv.Atoi(f[0])
	if err != nil || c < min || c > 100000 {
		return 0, 0, fmt.Errorf("%s: want a count of at least %d, got %q", name, min, f[0])
	}
	d, err := caddy.ParseDuration(f[1])
	if err != nil || d <= 0 {
		return 0, 0, fmt.Errorf("%s: want a positive window such as 1h, got %q", name, f[1])
	}
	return c, d, nil
}

// checkWebhookURL accepts an absolute http(s) URL. The URL often holds a
// secret (Slack's do), so errors do not repeat it.
func checkWebhookURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("alert_webhook: want an http:// or https:// URL")
	}
	return nil
}

func checkAlertOn(types []string) error {
	for _, t := range types {
		if !slices.Contains(activity.Types, t) {
			return fmt.Errorf("alert_on: unknown event type %q (known: %s)", t, strings.Join(activity.Types, ", "))
		}
	}
	return nil
}

// alertConfig checks and expands the app's alert options.
func (a *App) alertConfig(repl *caddy.Replacer) (alerts.Rules, string, error) {
	rules, err := a.Alerts.rules()
	if err != nil {
		return rules, "", fmt.Errorf("gatehouse: alerts: %w", err)
	}
	if err := checkAlertOn(a.AlertOn); err != nil {
		return rules, "", fmt.Errorf("gatehouse: %w", err)
	}
	hook := strings.TrimSpace(repl.ReplaceKnown(a.AlertWebhook, ""))
	if hook != "" {
		if err := checkWebhookURL(hook); err != nil {
			return rules, "", fmt.Errorf("gatehouse: %w", err)
		}
	}
	if len(a.AlertOn) > 0 && a.AlertWebhook == "" {
		return rules, "", fmt.Errorf("gatehouse: alert_on needs alert_webhook")
	}
	return rules, hook, nil
}

// parseAlertsBlock reads the alerts { ... } block of the global options.
func parseAlertsBlock(d *caddyfile.Dispenser) (*AlertRules, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	r := new(AlertRules)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if seen[key] {
			return nil, d.Errf("duplicate alerts subdirective %q", key)
		}
		seen[key] = true
		args := d.RemainingArgs()
		v := strings.Join(args, " ")
		var check AlertRules
		switch key {
		case "new_country", "new_device":
			if len(args) != 1 {
				return nil, d.ArgErr()
			}
			if key == "new_country" {
				r.NewCountry, check.NewCountry = v, v
			} else {
				r.NewDevice, check.NewDevice = v, v
			}
		case "impossible_travel":
			if len(args) != 1 {
				return nil, d.ArgErr()
			}
			r.ImpossibleTravel, check.ImpossibleTravel = v, v
		case "shared_ip", "failure_burst":
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			if key == "shared_ip" {
				r.SharedIP, check.SharedIP = v, v
			} else {
				r.FailureBurst, check.FailureBurst = v, v
			}
		default:
			return nil, d.Errf("unrecognized alerts subdirective %q", key)
		}
		if _, err := check.rules(); err != nil {
			return nil, d.Errf("alerts: %v", err)
		}
	}
	return r, nil
}
