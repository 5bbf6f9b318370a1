// Package geo turns what a request says about its origin into the summaries
// a session carries: a GeoIP Location from the client address (a local
// MaxMind-format City database that follows updates of its file) and a
// Device from the User-Agent header. It also validates ISO 3166-1 country
// codes for configuration. It knows nothing of Caddy and does not log:
// callers learn about database reloads through Err, Reload and
// WithReloadFunc.
package geo
