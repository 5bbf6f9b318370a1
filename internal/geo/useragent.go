package geo

import (
	"hash/maphash"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/mileusna/useragent"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// MaxUserAgent is the most bytes of a User-Agent header kept in a Device.
// Real browsers send 100–300 bytes; the header itself may be far longer
// (Go accepts 1 MB of headers), and the summary is stored in every session
// and shown in lists.
const MaxUserAgent = 512

// maxName bounds Browser, since an unrecognised agent's name is taken from
// the header.
const maxName = 32

// Device classes.
const (
	Desktop = "desktop"
	Mobile  = "mobile"
	Tablet  = "tablet"
	Bot     = "bot"
)

// ParseUserAgent summarises a User-Agent header: browser family, operating
// system family and device class (Desktop, Mobile, Tablet or Bot), with the
// header itself cut to MaxUserAgent bytes of valid UTF-8.
//
// Non-browser HTTP clients (curl, python-requests, Go-http-client, ...) and
// headless browsers count as Bot: to an administrator reading a session list
// they are automation, not a person's device. An empty header gives the zero
// Device, and a header nothing can be made of gives an empty Device class
// rather than a guess: "desktop" would be a claim the header does not make.
// iPads with iPadOS 13 or later send a macOS user agent and so read as
// Safari/macOS/desktop; no parser can tell them apart.
//
// Results are cached (the same few headers repeat across a user base), so
// a repeated header costs a hash and a map lookup. Safe for concurrent use.
func ParseUserAgent(ua string) session.Device {
	return defaultUACache.parse(ua)
}

// clip cuts ua to MaxUserAgent bytes at a character boundary and replaces
// invalid UTF-8, so that what is stored and displayed is bounded and
// well-formed.
func clip(ua string) string {
	ua = cut(ua)
	if !utf8.ValidString(ua) {
		ua = cut(strings.ToValidUTF8(ua, "\uFFFD"))
	}
	return ua
}

func cut(s string) string {
	if len(s) <= MaxUserAgent {
		return s
	}
	n := MaxUserAgent
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// summarise parses ua, which clip has already bounded.
func summarise(ua string) (d session.Device) {
	d.UserAgent = ua
	if strings.TrimSpace(ua) == "" {
		return d
	}
	// The header is attacker-controlled and the parser third-party: a
	// parser bug must cost the summary, not the request.
	defer func() {
		if recover() != nil {
			d = session.Device{UserAgent: ua}
		}
	}()
	p := useragent.Parse(ua)
	d.Browser = browserName(p.Name)
	d.OS = osName(p.OS)
	switch {
	case p.Bot || isAutomation(p.Name):
		d.Device = Bot
	case p.Tablet || androidTablet(p.OS, ua):
		d.Device = Tablet
	case p.Mobile:
		d.Device = Mobile
	case p.Desktop:
		d.Device = Desktop
	}
	return d
}

// androidTablet reports whether ua is a Chromium-based browser on an
// Android tablet, which the parser counts as mobile: Chromium marks phones
// with a "Mobile" token and tablets by its absence
// (https://developer.chrome.com/docs/multidevice/user-agent/).
func androidTablet(os, ua string) bool {
	return os == useragent.Android && strings.Contains(ua, "Chrome/") &&
		!strings.Contains(ua, "Mobile")
}

// browserFamilies maps the parser's names to the names people know the
// browsers by.
var browserFamilies = map[string]string{
	useragent.SamsungBrowser: "Samsung Internet",
	useragent.OperaTouch:     useragent.Opera,
	useragent.MobileSafari:   useragent.Safari,
	useragent.Msie:           useragent.InternetExplorer,
	"Trident":                useragent.InternetExplorer, // IE 11
	"YaBrowser":              "Yandex Browser",
	"UCBrowser":              "UC Browser",
}

// browserName returns the family name for the parser's name. The parser
// falls back to the header's first product token, or the whole header, for
// agents it does not know: that is kept when it looks like a product name
// and dropped when it does not.
func browserName(name string) string {
	if f, ok := browserFamilies[name]; ok {
		return f
	}
	if !productName(name) {
		return ""
	}
	return name
}

// productName reports whether s is short and made of the characters
// product names use.
func productName(s string) bool {
	if s == "" || len(s) > maxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == ' ' || c == '.' || c == '-' || c == '_'):
		default:
			return false
		}
	}
	return true
}

// osName returns the family name for the parser's operating system.
func osName(os string) string {
	switch os {
	case useragent.CrOS:
		return useragent.ChromeOS
	case useragent.Harmony:
		return "HarmonyOS"
	}
	return os
}

// automation lists, lower-case, the product names of HTTP clients that no
// person browses with. The parser only flags crawlers.
var automation = map[string]bool{
	"curl": true, "wget": true, "httpie": true, "postmanruntime": true,
	"python-requests": true, "python-urllib": true, "python-httpx": true,
	"aiohttp": true, "scrapy": true, "go-http-client": true, "okhttp": true,
	"java": true, "apache-httpclient": true, "libwww-perl": true,
	"axios": true, "node-fetch": true, "undici": true, "node": true,
	"ruby": true, "faraday": true, "dart": true, "powershell": true,
	"headless chrome": true, "phantomjs": true,
}

func isAutomation(name string) bool {
	l := strings.ToLower(name)
	return automation[l] || strings.Contains(l, "bot") ||
		strings.Contains(l, "crawler") || strings.Contains(l, "spider")
}

// uaCache is a bounded cache of summaries. It is sharded so that parallel
// requests rarely meet on a lock, and evicts a random entry of a full
// shard: cheaper than LRU bookkeeping on every hit, and as good when a few
// headers dominate, which they do.
type uaCache struct {
	seed   maphash.Seed
	shards [uaShards]uaShard
}

const (
	uaShards      = 16 // a power of two
	defaultUASize = 4096
)

type uaShard struct {
	mu  sync.Mutex
	max int
	m   map[string]session.Device
	// Keeps neighbouring shards' locks off one cache line.
	_ [40]byte
}

var defaultUACache = newUACache(defaultUASize)

// newUACache returns a cache of about size entries (at least one per
// shard).
func newUACache(size int) *uaCache {
	c := &uaCache{seed: maphash.MakeSeed()}
	per := max(1, size/uaShards)
	for i := range c.shards {
		c.shards[i].max = per
		c.shards[i].m = make(map[string]session.Device, per)
	}
	return c
}

func (c *uaCache) parse(ua string) session.Device {
	ua = clip(ua)
	if ua == "" {
		return session.Device{}
	}
	s := &c.shards[maphash.String(c.seed, ua)&(uaShards-1)]
	s.mu.Lock()
	d, ok := s.m[ua]
	s.mu.Unlock()
	if ok {
		return d
	}
	// Parse outside the lock; two requests racing on a new header both
	// parse it, which is harmless. Clone so that the cache does not pin
	// the request's header memory, of which ua may be a slice.
	d = summarise(strings.Clone(ua))
	s.mu.Lock()
	if len(s.m) >= s.max {
		for k := range s.m { // map iteration starts at a random entry
			delete(s.m, k)
			break
		}
	}
	s.m[d.UserAgent] = d
	s.mu.Unlock()
	return d
}
