package gateway

import (
	"html"
	"net/http"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

func htmlEscape(s string) string { return html.EscapeString(s) }

// messageStyle keeps the gateway's own pages (errors, sign-out) in the same
// calm look as the admin pages, without any external asset.
const messageStyle = `body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f5f6f8;color:#1f2430}
main{max-width:28rem;margin:12vh auto;padding:2rem;background:#fff;border:1px solid #e1e4ea;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.05)}
h1{font-size:1.35rem;margin:0 0 .75rem}p{margin:0 0 1.25rem;color:#454c5a}
a.button,button{display:inline-block;font:inherit;padding:.5rem 1rem;border-radius:6px;border:1px solid #2f5bd3;background:#2f5bd3;color:#fff;text-decoration:none;cursor:pointer}
.brand{font-size:.8rem;letter-spacing:.08em;text-transform:uppercase;color:#8a91a0;margin-bottom:1rem}`

// page writes a small message page; for non-browser clients a JSON body.
func (g *Gateway) page(w http.ResponseWriter, r *http.Request, status int, title, msg, linkText, link string) {
	if !web.Navigation(r) {
		body := map[string]string{"error": strings.ToLower(strings.ReplaceAll(title, " ", "_")), "message": msg}
		writeJSON(w, status, body)
		return
	}
	g.render(w, status, title, func(b *strings.Builder) {
		b.WriteString("<p>")
		b.WriteString(htmlEscape(msg))
		b.WriteString("</p>")
		if link != "" {
			b.WriteString(`<a class="button" href="`)
			b.WriteString(htmlEscape(link))
			b.WriteString(`">`)
			b.WriteString(htmlEscape(linkText))
			b.WriteString("</a>")
		}
	})
}

func (g *Gateway) render(w http.ResponseWriter, status int, title string, body func(*strings.Builder)) {
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>`)
	b.WriteString(htmlEscape(title))
	b.WriteString(`</title><style>`)
	b.WriteString(messageStyle)
	b.WriteString(`</style></head><body><main><div class="brand">gatehouse</div><h1>`)
	b.WriteString(htmlEscape(title))
	b.WriteString(`</h1>`)
	body(&b)
	b.WriteString(`</main></body></html>`)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	// For browsers without CSP 2, as on the admin pages: a framed
	// sign-out confirmation could be clicked through from another site.
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}
