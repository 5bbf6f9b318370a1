// Package gatehouse is an identity-aware gateway for Caddy: it signs people
// in with OpenID Connect, tracks and revokes their sessions, and keeps an
// audit log. Importing this package registers the Caddy modules, so that
//
//	xcaddy build --with github.com/gatehouse-proxy/gatehouse
//
// builds a Caddy with gatehouse in it.
package gatehouse

import (
	// Registers the gatehouse app, handler, Caddyfile syntax, admin routes
	// and CLI subcommands.
	_ "github.com/gatehouse-proxy/gatehouse/caddymodule"
)
