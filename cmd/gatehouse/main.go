// Command gatehouse is Caddy with its standard modules and the gatehouse
// identity-aware gateway, plus `gatehouse demo`, a one-command local
// playground with a development OpenID provider.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules (reverse_proxy, file_server, ...).
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// gatehouse's app, handler, admin routes and CLI subcommands.
	_ "github.com/gatehouse-proxy/gatehouse/caddymodule"
)

func main() {
	caddycmd.Main()
}
