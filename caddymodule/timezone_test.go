package caddymodule

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestLoadZone(t *testing.T) {
	for _, name := range []string{"", "UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kolkata"} {
		loc, err := loadZone(name)
		if err != nil || loc == nil {
			t.Errorf("loadZone(%q) = %v, %v", name, loc, err)
		}
	}
	for _, name := range []string{"Local", "Mars/Olympus", "/etc/localtime", "../../etc/passwd", "europe/amsterdam "} {
		if _, err := loadZone(name); err == nil {
			t.Errorf("loadZone(%q) succeeded", name)
		}
	}
}

// Issue 8, item 4: the zone reaches the runtime the pages read it from,
// and a bad one fails the config (JSON configs skip the Caddyfile check).
func TestAppTimezone(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a := &App{Timezone: "Europe/Amsterdam"}
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	if got := a.rt.Location().String(); got != "Europe/Amsterdam" {
		t.Errorf("runtime zone = %q, want Europe/Amsterdam", got)
	}
	bad := &App{Timezone: "Nowhere/Land"}
	err := bad.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "timezone") {
		t.Errorf("Provision with a bad zone = %v", err)
	}
	_ = bad.Cleanup()
}
