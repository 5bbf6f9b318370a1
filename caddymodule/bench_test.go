package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
)

// BenchmarkThroughCaddy measures requests through a real Caddy: bare
// reverse_proxy, bare reverse_proxy setting the four identity headers
// gatehouse sets (bare-headers), and gatehouse + reverse_proxy, to the
// same upstream, in the same run, with parallel keep-alive clients.
// Compare the ns/op of the sub-benchmarks (SPEC: gatehouse ≥ 0.95× the
// requests/s of bare; gatehouse against bare-headers is its own work):
//
//	go test -run '^$' -bench ThroughCaddy -count 5 ./caddymodule
//
// bench/run.sh measures against bare with wrk from other processes.
func BenchmarkThroughCaddy(b *testing.B) {
	idpSrv, idp := startIDP(b)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	defer up.Close()
	upstream := strings.TrimPrefix(up.URL, "http://")
	site, bare, bareHeaders := freePort(b), freePort(b), freePort(b)
	idp.AddClient(devidp.Client{ID: "site", Secret: "s", RedirectURIs: []string{"http://" + site + "/.gatehouse/callback"}})

	cfg := map[string]any{
		"admin": map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"apps": map[string]any{
			"gatehouse": map[string]any{"store": "memory"},
			"http": map[string]any{"servers": map[string]any{
				"gatehouse": map[string]any{
					"listen":          []string{site},
					"automatic_https": map[string]any{"disable": true},
					"routes": []any{map[string]any{"handle": []any{
						map[string]any{"handler": "gatehouse", "issuer": idpSrv.URL, "client_id": "site", "client_secret": "s"},
						map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": upstream}}},
					}}},
				},
				"bare": map[string]any{
					"listen":          []string{bare},
					"automatic_https": map[string]any{"disable": true},
					"routes": []any{map[string]any{"handle": []any{
						map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": upstream}}},
					}}},
				},
				// bare, forwarding what gatehouse forwards: the four
				// identity headers of bob, so that the difference to
				// gatehouse is gatehouse's own work.
				"bare-headers": map[string]any{
					"listen":          []string{bareHeaders},
					"automatic_https": map[string]any{"disable": true},
					"routes": []any{map[string]any{"handle": []any{
						map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": upstream}},
							"headers": map[string]any{"request": map[string]any{"set": map[string]any{
								"X-Forwarded-User": []string{"bob"}, "X-Forwarded-Email": []string{"bob@example.com"},
								"X-Forwarded-Preferred-Username": []string{"bob"}, "X-Forwarded-Groups": []string{"developers"},
							}}}},
					}}},
				},
			}},
		},
	}
	raw, _ := json.Marshal(cfg)
	if err := caddy.Load(raw, true); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = caddy.Stop() }()
	br := testflow.New(b)
	br.Login("http://"+site, "/", "bob")
	cookie := "gatehouse=" + br.Cookie("http://"+site, "gatehouse")

	run := func(b *testing.B, url, cookie string, browser bool) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		if browser {
			cookie = strings.TrimSuffix("app_session=4f1c2e9a7b3d5f60; theme=dark; "+cookie, "; ")
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if browser {
					for k, v := range browserHeaders {
						req.Header[k] = v
					}
				}
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	b.Run("bare", func(b *testing.B) { run(b, "http://"+bare+"/", "", false) })
	b.Run("bare-headers", func(b *testing.B) { run(b, "http://"+bareHeaders+"/", cookie, false) })
	b.Run("gatehouse", func(b *testing.B) { run(b, "http://"+site+"/", cookie, false) })
	// The same with what a browser sends on a navigation, and an app
	// cookie of the site's own.
	b.Run("bare-browser", func(b *testing.B) { run(b, "http://"+bare+"/", "", true) })
	b.Run("gatehouse-browser", func(b *testing.B) { run(b, "http://"+site+"/", cookie, true) })
}

// browserHeaders are Chromium's request headers on a navigation.
var browserHeaders = http.Header{
	"User-Agent":                {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
	"Accept":                    {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8"},
	"Accept-Language":           {"en-US,en;q=0.9"},
	"Sec-Ch-Ua":                 {`"Chromium";v="131", "Not_A Brand";v="24"`},
	"Sec-Ch-Ua-Mobile":          {"?0"},
	"Sec-Ch-Ua-Platform":        {`"Linux"`},
	"Sec-Fetch-Dest":            {"document"},
	"Sec-Fetch-Mode":            {"navigate"},
	"Sec-Fetch-Site":            {"same-origin"},
	"Sec-Fetch-User":            {"?1"},
	"Upgrade-Insecure-Requests": {"1"},
	"Referer":                   {"http://localhost/"},
}
