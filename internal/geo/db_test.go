package geo

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/geo/geotest"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

var (
	amsterdam = geotest.Entry{
		Network:   "2001:db8::/32",
		City:      "Amsterdam",
		Region:    "North Holland",
		Country:   "NL",
		Latitude:  52.3759,
		Longitude: 4.8975,
	}
	// countryOnly is shaped like GeoLite2 records for networks known only
	// to a country, written lower-case to check that Lookup normalises.
	countryOnly = geotest.Entry{Network: "198.51.100.0/24", Country: "de"}
	testEntries = []geotest.Entry{geotest.London, amsterdam, countryOnly}

	london = session.Location{City: "London", Region: "England", Country: "GB", Latitude: 51.5142, Longitude: -0.0931}
	amst   = session.Location{City: "Amsterdam", Region: "North Holland", Country: "NL", Latitude: 52.3759, Longitude: 4.8975}
)

// fakeClock is a Clock tests move by hand.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Duration
	timers []*fakeTimer
}

type fakeTimer struct {
	at             time.Duration
	f              func()
	fired, stopped bool
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now + d, f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		pending := !t.fired && !t.stopped
		t.stopped = true
		return pending
	}
}

// Advance moves time on by d and runs the functions that fall due, in
// order and in the calling goroutine, so that their effects are visible
// when it returns.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now + d
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.fired && !t.stopped && t.at <= end && (next == nil || t.at < next.at) {
				next = t
			}
		}
		if next == nil {
			break
		}
		c.now = next.at
		next.fired = true
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// pending counts timers that have not fired or been stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.fired && !t.stopped {
			n++
		}
	}
	return n
}

// writeDB writes a database to a fresh directory and returns its path.
func writeDB(t testing.TB, entries []geotest.Entry) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "City.mmdb")
	geotest.WriteCity(t, path, entries)
	return path
}

// replace puts data at path the way geoipupdate does: write a temporary
// file next to it, then rename it over the old one.
func replace(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func cityBytes(t testing.TB, entries []geotest.Entry) []byte {
	t.Helper()
	b, err := geotest.City(entries)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openTest(t testing.TB, path string, opts ...Option) *DB {
	t.Helper()
	db, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("Open(%q) error: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestLookup(t *testing.T) {
	db := openTest(t, writeDB(t, testEntries))
	tests := []struct {
		name string
		ip   string
		want session.Location
	}{
		{"ipv4", "81.2.69.142", london},
		{"ipv4 other host in network", "81.2.69.1", london},
		{"ipv4-mapped ipv6", "::ffff:81.2.69.142", london},
		{"ipv6", "2001:db8::1", amst},
		{"ipv6 with zone", "2001:db8::1%eth0", amst},
		{"country only, upper-cased", "198.51.100.7", session.Location{Country: "DE"}},
		{"unknown ipv4", "8.8.8.8", session.Location{}},
		{"unknown ipv6", "2606:4700::1111", session.Location{}},
		{"private", "10.1.2.3", session.Location{}},
		{"loopback", "127.0.0.1", session.Location{}},
		{"ipv6 loopback", "::1", session.Location{}},
		{"unspecified", "0.0.0.0", session.Location{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip)
			if got := db.Lookup(ip); got != tt.want {
				t.Errorf("Lookup(%v) = %+v, want %+v", ip, got, tt.want)
			}
		})
	}
	t.Run("invalid address", func(t *testing.T) {
		if got := db.Lookup(netip.Addr{}); got != (session.Location{}) {
			t.Errorf("Lookup(zero Addr) = %+v, want zero", got)
		}
	})
}

// Tests on loopback need a location for 127.0.0.1; geotest allows
// reserved networks for that.
func TestLookupReservedNetworkInTestDB(t *testing.T) {
	loop := geotest.Entry{Network: "127.0.0.0/8", City: "Testville", Country: "NL"}
	db := openTest(t, writeDB(t, []geotest.Entry{loop}))
	want := session.Location{City: "Testville", Country: "NL"}
	if got := db.Lookup(netip.MustParseAddr("127.0.0.1")); got != want {
		t.Errorf("Lookup(127.0.0.1) = %+v, want %+v", got, want)
	}
}

func TestNilDB(t *testing.T) {
	var db *DB
	if got := db.Lookup(netip.MustParseAddr("81.2.69.142")); got != (session.Location{}) {
		t.Errorf("nil Lookup = %+v, want zero", got)
	}
	if err := db.Reload(); err != nil {
		t.Errorf("nil Reload = %v, want nil", err)
	}
	if err := db.Err(); err != nil {
		t.Errorf("nil Err = %v, want nil", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("nil Close = %v, want nil", err)
	}
	if p := db.Path(); p != "" {
		t.Errorf("nil Path = %q, want empty", p)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.mmdb")
	os.WriteFile(garbage, []byte("this is not a MaxMind database"), 0o644)
	empty := filepath.Join(dir, "empty.mmdb")
	os.WriteFile(empty, nil, 0o644)
	truncated := filepath.Join(dir, "truncated.mmdb")
	full := cityBytes(t, testEntries)
	os.WriteFile(truncated, full[:len(full)/2], 0o644)

	tests := []struct {
		name     string
		path     string
		notExist bool
	}{
		{"missing", filepath.Join(dir, "nope.mmdb"), true},
		{"directory", dir, false},
		{"garbage", garbage, false},
		{"empty", empty, false},
		{"truncated", truncated, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(tt.path)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) = nil error, want one", tt.path)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "opening geoip database: ") || !strings.Contains(msg, tt.path) {
				t.Errorf("Open(%q) error %q: want context and path", tt.path, msg)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notExist {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, got, tt.notExist)
			}
		})
	}
}

func TestReplacedFileIsPickedUpAfterInterval(t *testing.T) {
	clock := &fakeClock{}
	path := writeDB(t, testEntries)
	var reloads []error
	db := openTest(t, path,
		WithClock(clock),
		WithCheckInterval(time.Minute),
		WithReloadFunc(func(err error) { reloads = append(reloads, err) }),
	)
	ip := netip.MustParseAddr("81.2.69.142")
	manchester := geotest.Entry{Network: "81.2.69.0/24", City: "Manchester", Region: "England", Country: "GB", Latitude: 53.48, Longitude: -2.24}
	replace(t, path, cityBytes(t, []geotest.Entry{manchester}))

	clock.Advance(59 * time.Second)
	if got := db.Lookup(ip); got.City != "London" {
		t.Fatalf("Lookup before the interval = %q, want London", got.City)
	}
	if len(reloads) != 0 {
		t.Fatalf("reload func calls = %v before the interval, want none", reloads)
	}

	clock.Advance(time.Second)
	if got := db.Lookup(ip); got.City != "Manchester" {
		t.Errorf("Lookup after the interval = %q, want Manchester", got.City)
	}
	if err := db.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
	if len(reloads) != 1 || reloads[0] != nil {
		t.Errorf("reload func calls = %v, want one nil", reloads)
	}

	// An unchanged file is not reopened, and checks go on.
	clock.Advance(time.Minute)
	if len(reloads) != 1 {
		t.Errorf("reload func calls = %v after an unchanged check, want one", reloads)
	}
	replace(t, path, cityBytes(t, testEntries))
	clock.Advance(time.Minute)
	if got := db.Lookup(ip); got != london {
		t.Errorf("Lookup after a second replacement = %+v, want %+v", got, london)
	}

	// Close stops the timer.
	db.Close()
	if n := clock.pending(); n != 0 {
		t.Errorf("%d timers pending after Close, want 0", n)
	}
}

// The real clock drives checks too.
func TestReplacedFileIsPickedUpRealClock(t *testing.T) {
	path := writeDB(t, testEntries)
	db := openTest(t, path, WithCheckInterval(5*time.Millisecond))
	replace(t, path, cityBytes(t, []geotest.Entry{amsterdam}))
	ip := netip.MustParseAddr("2001:db8::1")
	deadline := time.Now().Add(5 * time.Second)
	for db.Lookup(ip) != amst {
		if time.Now().After(deadline) {
			t.Fatal("replacement not picked up within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCheckIntervalOff(t *testing.T) {
	clock := &fakeClock{}
	path := writeDB(t, testEntries)
	db := openTest(t, path, WithClock(clock), WithCheckInterval(0))
	replace(t, path, cityBytes(t, []geotest.Entry{amsterdam}))
	clock.Advance(24 * time.Hour)
	ip := netip.MustParseAddr("81.2.69.142")
	if got := db.Lookup(ip); got != london {
		t.Fatalf("Lookup with checks off = %+v, want %+v", got, london)
	}
	if err := db.Reload(); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	if got := db.Lookup(ip); got != (session.Location{}) {
		t.Errorf("Lookup after Reload = %+v, want zero (no longer in the database)", got)
	}
}

func TestBrokenReplacementKeepsOldDatabase(t *testing.T) {
	full := cityBytes(t, testEntries)
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"garbage", []byte("<html>503 Service Unavailable</html>"), "invalid MaxMind DB file"},
		{"empty", nil, "invalid MaxMind DB file"},
		{"truncated", full[:len(full)-100], "unexpected end of database"},
		// Only the probe lookups notice this one: the metadata is intact.
		{"damaged search tree", func() []byte {
			b := append([]byte(nil), full...)
			for i := 0; i < 64; i++ {
				b[i] = 0xff
			}
			return b
		}(), "verifying"},
	}
	ip := netip.MustParseAddr("81.2.69.142")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{}
			path := writeDB(t, testEntries)
			var reloads []error
			db := openTest(t, path, WithClock(clock),
				WithReloadFunc(func(err error) { reloads = append(reloads, err) }))

			replace(t, path, tt.data)
			clock.Advance(DefaultCheckInterval)
			if got := db.Lookup(ip); got != london {
				t.Errorf("Lookup after broken replacement = %+v, want %+v", got, london)
			}
			err := db.Err()
			if err == nil || !strings.HasPrefix(err.Error(), "reloading geoip database: ") ||
				!strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Err() = %v, want a reloading error mentioning %q", err, tt.wantErr)
			}
			if len(reloads) != 1 || reloads[0] == nil {
				t.Fatalf("reload func calls = %v, want one error", reloads)
			}

			// The same broken file is not retried every interval...
			clock.Advance(DefaultCheckInterval)
			if len(reloads) != 1 || db.Err() == nil {
				t.Errorf("after a second check: reload calls %v, Err %v; want one call, error kept", reloads, db.Err())
			}
			// ...but Reload retries it.
			if err := db.Reload(); err == nil {
				t.Errorf("Reload() = nil, want the error again")
			}

			// A good file replacing the broken one is picked up.
			replace(t, path, cityBytes(t, []geotest.Entry{amsterdam}))
			if err := db.Reload(); err != nil {
				t.Fatalf("Reload() after repair = %v", err)
			}
			if db.Err() != nil {
				t.Errorf("Err() after repair = %v, want nil", db.Err())
			}
			if got := db.Lookup(netip.MustParseAddr("2001:db8::1")); got != amst {
				t.Errorf("Lookup after repair = %+v, want %+v", got, amst)
			}
		})
	}
}

func TestRemovedFileKeepsOldDatabase(t *testing.T) {
	clock := &fakeClock{}
	path := writeDB(t, testEntries)
	var reloads atomic.Int32
	db := openTest(t, path, WithClock(clock),
		WithReloadFunc(func(error) { reloads.Add(1) }))
	os.Remove(path)
	ip := netip.MustParseAddr("81.2.69.142")
	for range 3 {
		clock.Advance(DefaultCheckInterval)
	}
	if got := db.Lookup(ip); got != london {
		t.Errorf("Lookup after removal = %+v, want %+v", got, london)
	}
	if err := db.Err(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Err() = %v, want fs.ErrNotExist", err)
	}
	if n := reloads.Load(); n != 1 {
		t.Errorf("reload func called %d times for a removed file, want 1", n)
	}
}

// cp overwrites a file in place (same inode); size and mtime reveal it.
func TestInPlaceOverwriteIsPickedUp(t *testing.T) {
	path := writeDB(t, testEntries)
	db := openTest(t, path)
	if err := os.WriteFile(path, cityBytes(t, []geotest.Entry{amsterdam}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := db.Reload(); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	if got := db.Lookup(netip.MustParseAddr("81.2.69.142")); got != (session.Location{}) {
		t.Errorf("Lookup after overwrite = %+v, want zero", got)
	}
}

func TestClose(t *testing.T) {
	db := openTest(t, writeDB(t, testEntries))
	if err := db.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if got := db.Lookup(netip.MustParseAddr("81.2.69.142")); got != (session.Location{}) {
		t.Errorf("Lookup after Close = %+v, want zero", got)
	}
	if err := db.Reload(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reload after Close = %v, want ErrClosed", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
}

// Lookups racing with reloads always see one whole database or the other.
func TestLookupDuringReloads(t *testing.T) {
	clock := &fakeClock{}
	path := writeDB(t, testEntries)
	var swaps atomic.Int32
	db := openTest(t, path, WithClock(clock), WithCheckInterval(time.Second),
		WithReloadFunc(func(err error) {
			if err == nil {
				swaps.Add(1)
			}
		}))
	paris := geotest.Entry{Network: "81.2.69.0/24", City: "Paris", Country: "FR"}
	versions := [][]byte{cityBytes(t, []geotest.Entry{paris}), cityBytes(t, testEntries)}

	ip := netip.MustParseAddr("81.2.69.142")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Value
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got := db.Lookup(ip); got.City != "London" && got.City != "Paris" {
					bad.Store(got)
				}
			}
		})
	}
	for i := range 20 {
		replace(t, path, versions[i%2])
		clock.Advance(time.Second)
		if i%3 == 0 {
			db.Reload()
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if got := bad.Load(); got != nil {
		t.Errorf("Lookup during reloads returned %+v", got)
	}
	if n := swaps.Load(); n != 20 {
		t.Errorf("%d swaps, want 20", n)
	}
	if got := db.Lookup(ip); got != london {
		t.Errorf("Lookup after the last swap = %+v, want %+v", got, london)
	}
}

func benchDB(b *testing.B) *DB {
	b.Helper()
	db, err := Open(writeDB(b, testEntries))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func BenchmarkLookup(b *testing.B) {
	db := benchDB(b)
	for _, ip := range []string{"81.2.69.142", "2001:db8::1", "8.8.8.8"} {
		addr := netip.MustParseAddr(ip)
		b.Run(ip, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				db.Lookup(addr)
			}
		})
	}
}

func BenchmarkLookupParallel(b *testing.B) {
	db := benchDB(b)
	addr := netip.MustParseAddr("81.2.69.142")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			db.Lookup(addr)
		}
	})
}
