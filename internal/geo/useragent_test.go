package geo

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
	"unsafe"

	"github.com/mileusna/useragent"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

var uaTests = []struct {
	name                string
	ua                  string
	browser, os, device string
}{
	{"chrome windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "Chrome", "Windows", "desktop"},
	{"firefox linux", "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox", "Linux", "desktop"},
	{"firefox ubuntu", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox", "Linux", "desktop"},
	{"firefox windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox", "Windows", "desktop"},
	{"safari macos", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15", "Safari", "macOS", "desktop"},
	{"safari iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", "Safari", "iOS", "mobile"},
	{"chrome iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", "Chrome", "iOS", "mobile"},
	{"chrome android phone", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", "Chrome", "Android", "mobile"},
	{"chrome android tablet", "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "Chrome", "Android", "tablet"},
	{"firefox android", "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", "Firefox", "Android", "mobile"},
	{"samsung internet", "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", "Samsung Internet", "Android", "mobile"},
	{"ipad", "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", "Safari", "iOS", "tablet"},
	// iPadOS 13+ asks for desktop sites and says so: indistinguishable.
	{"ipados desktop mode", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", "Safari", "macOS", "desktop"},
	{"edge windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80", "Edge", "Windows", "desktop"},
	{"edge legacy", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19045", "Edge", "Windows", "desktop"},
	{"opera", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0", "Opera", "Windows", "desktop"},
	{"vivaldi", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Vivaldi/6.7", "Vivaldi", "Windows", "desktop"},
	{"yandex", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 YaBrowser/24.4.0.0 Safari/537.36", "Yandex Browser", "Windows", "desktop"},
	{"internet explorer 11", "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", "Internet Explorer", "Windows", "desktop"},
	{"internet explorer 9", "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)", "Internet Explorer", "Windows", "desktop"},
	{"chromebook", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "Chrome", "ChromeOS", "desktop"},
	{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot", "", "bot"},
	{"googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot", "Android", "bot"},
	{"bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "Bingbot", "", "bot"},
	{"headless chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36", "Headless Chrome", "Linux", "bot"},
	{"curl", "curl/8.5.0", "curl", "", "bot"},
	{"wget", "Wget/1.21.4", "Wget", "", "bot"},
	{"python-requests", "python-requests/2.31.0", "python-requests", "", "bot"},
	{"go", "Go-http-client/1.1", "Go-http-client", "", "bot"},
	{"postman", "PostmanRuntime/7.37.3", "PostmanRuntime", "", "bot"},
	{"empty", "", "", "", ""},
	{"blank", "   ", "", "", ""},
	{"bare mozilla", "Mozilla/5.0", "", "", ""},
	{"garbage", "}}}{{{ ;;; !!! ((( )))", "", "", ""},
	{"binary garbage", "\x00\x01\xff\xfe/\x80", "", "", ""},
	{"unknown product", "AcmeMonitor/2.0", "AcmeMonitor", "", ""},
}

func TestParseUserAgent(t *testing.T) {
	for _, tt := range uaTests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseUserAgent(tt.ua)
			want := session.Device{UserAgent: clip(tt.ua), Browser: tt.browser, OS: tt.os, Device: tt.device}
			if tt.name == "empty" {
				want.UserAgent = ""
			}
			if got != want {
				t.Errorf("ParseUserAgent(%q) = %+v, want %+v", tt.ua, got, want)
			}
			// A cache hit answers the same.
			if again := ParseUserAgent(tt.ua); again != got {
				t.Errorf("second ParseUserAgent(%q) = %+v, want %+v", tt.ua, again, got)
			}
		})
	}
}

func TestParseUserAgentClips(t *testing.T) {
	chrome := uaTests[0].ua
	tests := []struct {
		name string
		ua   string
	}{
		{"long ascii", chrome + strings.Repeat(" x", 5000)},
		{"multibyte across the limit", strings.Repeat("é", 1000)},
		{"invalid utf-8", chrome + " \xff\xfe" + strings.Repeat("\x80a", 600)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ParseUserAgent(tt.ua)
			if len(d.UserAgent) > MaxUserAgent || !utf8.ValidString(d.UserAgent) {
				t.Errorf("UserAgent is %d bytes, valid UTF-8 %v; want ≤ %d and valid", len(d.UserAgent), utf8.ValidString(d.UserAgent), MaxUserAgent)
			}
			if len(d.UserAgent) < MaxUserAgent-3 {
				t.Errorf("UserAgent cut to %d bytes, want close to %d", len(d.UserAgent), MaxUserAgent)
			}
		})
	}
	// The summary comes from the kept part, so a long Chrome header is
	// still Chrome.
	if d := ParseUserAgent(tests[0].ua); d.Browser != "Chrome" || d.OS != "Windows" {
		t.Errorf("long Chrome header: %+v, want Chrome on Windows", d)
	}
}

func TestUACacheBounded(t *testing.T) {
	c := newUACache(64)
	for i := range 10000 {
		ua := fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0", i, i)
		if d := c.parse(ua); d.Browser != "Firefox" {
			t.Fatalf("parse(%q) = %+v", ua, d)
		}
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].m)
	}
	if n > 64 {
		t.Errorf("cache holds %d entries, want ≤ 64", n)
	}
}

// The cache must not keep the caller's string alive: a header cut from a
// large buffer would pin the whole buffer.
func TestUACacheDoesNotPinInput(t *testing.T) {
	c := newUACache(16)
	big := strings.Repeat("Mozilla/5.0 (Windows NT 10.0) Chrome/1.0 Safari/1 ", 100)
	d := c.parse(big)
	start := uintptr(unsafe.Pointer(unsafe.StringData(big)))
	p := uintptr(unsafe.Pointer(unsafe.StringData(d.UserAgent)))
	if p >= start && p < start+uintptr(len(big)) {
		t.Error("cached UserAgent shares memory with the input")
	}
}

func TestUACacheConcurrent(t *testing.T) {
	c := newUACache(32)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				tt := uaTests[(g+i)%len(uaTests)]
				if d := c.parse(tt.ua); d.Browser != tt.browser || d.Device != tt.device {
					t.Errorf("parse(%q) = %+v, want %s/%s", tt.ua, d, tt.browser, tt.device)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzParseUserAgent(f *testing.F) {
	for _, tt := range uaTests {
		f.Add(tt.ua)
	}
	f.Add(strings.Repeat("(", 600))
	f.Add("Mozilla/5.0 (Linux; Android")
	f.Add("Mozilla/5.0 (Linux; Android 14; ")
	f.Add("http://x/y/z; +https://a:b/c [FBAN/FBIOS;FBAV/1]")
	f.Add("Instagram 1 Android (a/b; c; d; e; f; g; h; i)")
	f.Add("Mozilla/5.0 (X11; CrOS aarch64 ) XiaoMi/MiuiBrowser/")
	devices := map[string]bool{"": true, Desktop: true, Mobile: true, Tablet: true, Bot: true}
	c := newUACache(8) // small, so that eviction runs too
	// A name is shown in pages, events and CSV cells: printable, valid,
	// short.
	printable := func(s string) bool {
		return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError })
	}
	f.Fuzz(func(t *testing.T, ua string) {
		clipped := clip(ua)
		if clip(clipped) != clipped {
			t.Fatalf("clip(%q) = %q, which clips again to %q", ua, clipped, clip(clipped))
		}
		if utf8.ValidString(ua) && !strings.HasPrefix(ua, clipped) {
			t.Fatalf("clip(%q) = %q is not a prefix of the valid header", ua, clipped)
		}
		want := summarise(clipped)
		// The cache, shared by every input of the run and evicting at
		// random, must answer as a fresh parse does, twice.
		for range 2 {
			if got := c.parse(ua); got != want {
				t.Fatalf("cached parse(%q) = %+v, fresh %+v", ua, got, want)
			}
		}
		d := want
		if d.UserAgent != clipped || len(d.UserAgent) > MaxUserAgent || !utf8.ValidString(d.UserAgent) {
			t.Errorf("UserAgent %q (%d bytes) of %q, want %q", d.UserAgent, len(d.UserAgent), ua, clipped)
		}
		if len(d.Browser) > maxName || len(d.OS) > maxName || !printable(d.Browser) || !printable(d.OS) {
			t.Errorf("Browser %q / OS %q too long or not printable", d.Browser, d.OS)
		}
		if l := d.Label(); len(l) > 2*maxName+4 || !printable(l) {
			t.Errorf("Label %q", l)
		}
		if !devices[d.Device] {
			t.Errorf("Device = %q", d.Device)
		}
	})
}

var benchUAs = []string{
	uaTests[0].ua, uaTests[1].ua, uaTests[4].ua, uaTests[5].ua, uaTests[7].ua, uaTests[13].ua,
}

func BenchmarkParseUserAgent(b *testing.B) {
	b.Run("cached", func(b *testing.B) {
		for _, ua := range benchUAs {
			ParseUserAgent(ua)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ParseUserAgent(benchUAs[i%len(benchUAs)])
			i++
		}
	})
	b.Run("cached parallel", func(b *testing.B) {
		for _, ua := range benchUAs {
			ParseUserAgent(ua)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				ParseUserAgent(benchUAs[i%len(benchUAs)])
				i++
			}
		})
	})
	// What every call would cost without the cache.
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			summarise(benchUAs[i%len(benchUAs)])
			i++
		}
	})
	b.Run("library only", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			useragent.Parse(benchUAs[i%len(benchUAs)])
			i++
		}
	})
}
