package caddymodule

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-proxy/gatehouse/admin"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// adminHandler serves a site's pages and JSON API under its path prefix.
func adminHandler(a *App) http.Handler { return admin.New(a.rt) }

// AdminAPI puts gatehouse's session and event operations on Caddy's admin
// endpoint (default localhost:2019) under /gatehouse/, for automation and
// the CLI. It has the powers of an admin; Caddy's admin endpoint guards
// access (loopback, Host and Origin checks, or remote admin with mTLS).
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.gatehouse",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/gatehouse/", Handler: caddy.AdminHandlerFunc(serveAdminAPI)}}
}

// serveAdminAPI looks the app up per request: admin modules are built
// before apps, and survive config reloads that replace the app.
func serveAdminAPI(w http.ResponseWriter, r *http.Request) error {
	app, err := caddy.ActiveContext().AppIfConfigured("gatehouse")
	if err != nil || app == nil {
		return caddy.APIError{
			HTTPStatus: http.StatusNotFound,
			Err:        errors.New("gatehouse is not configured in the running config"),
		}
	}
	admin.NewAPI(app.(*App).rt, "/gatehouse").ServeHTTP(w, r)
	return nil
}

// Interface guards
var _ caddy.AdminRouter = AdminAPI{}
