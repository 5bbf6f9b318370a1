package gateway

import "time"

// Location is the time zone the pages show times in (the timezone
// option; RuntimeConfig.Location), UTC when none is set. The admin
// package reads it through its Locator interface.
func (rt *Runtime) Location() *time.Location {
	if rt.cfg.Location == nil {
		return time.UTC
	}
	return rt.cfg.Location
}
