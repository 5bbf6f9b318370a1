package main

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func TestParseClientFlag(t *testing.T) {
	c, err := parseClientFlag("oauth2-proxy,s3cret,http://127.0.0.1:4180/oauth2/callback,http://localhost:4180/oauth2/callback")
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "oauth2-proxy" || c.Secret != "s3cret" ||
		!slices.Equal(c.RedirectURIs, []string{"http://127.0.0.1:4180/oauth2/callback", "http://localhost:4180/oauth2/callback"}) {
		t.Errorf("parseClientFlag = %+v", c)
	}
	for _, bad := range []string{"", "id", "id,secret", ",secret,http://x/cb", "id,,http://x/cb", "id,secret,", "id,secret,http://x/cb,"} {
		if _, err := parseClientFlag(bad); err == nil {
			t.Errorf("parseClientFlag(%q): no error", bad)
		}
	}
}

// --cache-ttl reaches the gatehouse app's config; without it the app's
// default applies.
func TestDemoConfigCacheTTL(t *testing.T) {
	for _, tt := range []struct {
		ttl  time.Duration
		want any
	}{{time.Nanosecond, "1ns"}, {0, nil}} {
		raw, err := demoConfig(demoConfigInput{store: "memory", listen: "127.0.0.1:1", issuer: "http://localhost:2", cacheTTL: tt.ttl})
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Apps struct {
				Gatehouse map[string]any `json:"gatehouse"`
			} `json:"apps"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		if got := cfg.Apps.Gatehouse["cache_ttl"]; got != tt.want {
			t.Errorf("cacheTTL %v: cache_ttl = %v, want %v", tt.ttl, got, tt.want)
		}
	}
}
