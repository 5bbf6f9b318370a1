package caddymodule

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Regression (issue 6, item 10): behind a TLS-terminating proxy the scheme
// came from r.TLS alone, so cookies lost Secure and forms failed the
// same-origin check. A trusted proxy's X-Forwarded-Proto now counts; an
// untrusted peer's never does.
func TestScheme(t *testing.T) {
	tests := []struct {
		name    string
		tls     bool
		trusted bool
		xfp     []string
		want    string
	}{
		{"plain", false, false, nil, "http"},
		{"TLS", true, false, nil, "https"},
		{"TLS, trusted proxy says http", true, true, []string{"http"}, "https"},
		{"untrusted peer claims https", false, false, []string{"https"}, "http"},
		{"trusted proxy says https", false, true, []string{"https"}, "https"},
		{"trusted proxy says HTTPS", false, true, []string{" HTTPS "}, "https"},
		{"trusted proxy says http", false, true, []string{"http"}, "http"},
		{"trusted proxy, no header", false, true, nil, "http"},
		{"trusted proxy, last field counts", false, true, []string{"https", "http"}, "http"},
		{"trusted proxy, list: outermost first", false, true, []string{"https, http"}, "https"},
		{"trusted proxy, junk", false, true, []string{"httpsx"}, "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://app.example.com/", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tt.xfp != nil {
				r.Header["X-Forwarded-Proto"] = tt.xfp
			}
			vars := map[string]any{caddyhttp.TrustedProxyVarKey: tt.trusted}
			r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
			if got := scheme(r); got != tt.want {
				t.Errorf("scheme(tls=%v trusted=%v X-Forwarded-Proto=%q) = %q, want %q", tt.tls, tt.trusted, tt.xfp, got, tt.want)
			}
		})
	}
}

// Regression (found by FuzzUnmarshalCaddyfile): a placeholder that expands
// to nothing passed Validate, and only Provision refused the config, for a
// value that seemed to be there.
func TestValidatePlaceholderExpandsToNothing(t *testing.T) {
	t.Setenv("GATEHOUSE_TEST_EMPTY", "")
	for _, h := range []Handler{
		{Issuer: "{env.GATEHOUSE_TEST_EMPTY}", ClientID: "app"},
		{Issuer: "https://i", ClientID: "{env.GATEHOUSE_TEST_EMPTY}"},
	} {
		if err := h.Validate(); err == nil || !strings.Contains(err.Error(), `"{env.GATEHOUSE_TEST_EMPTY}" is empty once its placeholders are expanded`) {
			t.Errorf("Validate(issuer %q, client_id %q) = %v, want the placeholder named", h.Issuer, h.ClientID, err)
		}
	}
	t.Setenv("GATEHOUSE_TEST_EMPTY", "app")
	if err := (&Handler{Issuer: "https://i", ClientID: "{env.GATEHOUSE_TEST_EMPTY}"}).Validate(); err != nil {
		t.Errorf("Validate with the variable set: %v", err)
	}
}
