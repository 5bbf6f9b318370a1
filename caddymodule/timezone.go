package caddymodule

import (
	"fmt"
	"strings"
	"time"

	// The zone names must resolve on hosts and containers without a
	// zoneinfo database, or a config valid on one machine fails on another.
	_ "time/tzdata"
)

// loadZone reads the timezone option: an IANA name; empty is UTC. A name
// Go would take as the host's zone ("Local") or a file path is refused:
// the zone must mean the same on every instance.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return nil, fmt.Errorf("%q is not an IANA time zone name such as Europe/Amsterdam", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q; use an IANA name such as Europe/Amsterdam", name)
	}
	return loc, nil
}
