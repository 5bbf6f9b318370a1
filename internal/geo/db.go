package geo

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// DefaultCheckInterval is how often a DB looks at its file for a
// replacement unless WithCheckInterval says otherwise. geoipupdate runs
// daily or weekly, so a minute of delay is invisible while the cost (one
// stat) stays negligible.
const DefaultCheckInterval = time.Minute

// ErrClosed is returned by Reload after Close.
var ErrClosed = errors.New("geoip database closed")

// Option configures Open.
type Option func(*DB)

// WithCheckInterval sets the time between two checks of the file for a
// replacement. Zero or negative turns the periodic check off; Reload still
// works. Default: DefaultCheckInterval (1m).
func WithCheckInterval(d time.Duration) Option {
	return func(db *DB) { db.interval = d }
}

// Clock schedules the periodic file check. The real one wraps
// time.AfterFunc; tests pass a fake they advance by hand.
type Clock interface {
	// AfterFunc runs f once, in its own goroutine, after d, unless the
	// returned stop function is called first.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// WithClock replaces the real clock (tests). Nil keeps the real one.
func WithClock(c Clock) Option {
	return func(db *DB) {
		if c != nil {
			db.clock = c
		}
	}
}

// WithReloadFunc sets a function called after every attempt to open a
// replaced file, with nil on success, and once when the file cannot be
// found any more. It lets the caller log reloads, since this package does
// not. It runs on the goroutine doing the check, with the DB's lock held:
// it must not block, nor call Reload or Close.
func WithReloadFunc(f func(error)) Option {
	return func(db *DB) { db.onReload = f }
}

// DB answers GeoIP lookups from a MaxMind-format City database (GeoLite2-City,
// GeoIP2-City or compatible) and follows replacements of its file.
//
// Reload design. Lookup makes no system call, takes no lock and reads no
// clock: it loads the current reader through an atomic pointer. Checking
// for a replacement is left to a timer (time.AfterFunc, no goroutine while
// idle) that fires every check interval: it stats the file and, if its
// inode, size or modification time changed (geoipupdate renames a new file
// into place; cp rewrites it in place), reads and checks the new database
// and swaps the pointer. Lookups in flight keep using the old reader, which
// the garbage collector frees once they are done. A replacement that fails
// to open leaves the old database in service; the error is kept for Err,
// returned by Reload and passed to the WithReloadFunc function, and the same
// broken file is not retried until it changes again. A check on every
// Lookup was measured instead: reading the clock alone (time.Now, 50 ns on
// a kvm-clock VM) would have been a tenth of the lookup.
//
// The file is read into memory rather than memory-mapped: an administrator
// copying a new database over the old one in place (cp truncates the file)
// would make a mapped reader fault with SIGBUS, taking the gateway down.
// The price is the database's size in heap (about 60 MB for GeoLite2-City),
// twice that for the moment of a reload.
//
// A nil *DB is valid: Lookup returns the zero Location, so callers without a
// configured database need no special case. A DB is safe for concurrent use.
// Call Close when done: the pending timer keeps an unclosed DB alive.
type DB struct {
	path     string
	interval time.Duration
	clock    Clock
	onReload func(error)

	reader atomic.Pointer[maxminddb.Reader]
	err    atomic.Pointer[error]

	// mu serialises checks, Reload and Close.
	mu sync.Mutex
	// The fields below are guarded by mu.
	closed bool
	stop   func() bool // stops the pending timer
	// loaded describes the file the current reader was read from.
	loaded os.FileInfo
	// failed describes the last file that could not be opened; it is not
	// retried automatically until it changes.
	failed os.FileInfo
	// missing is set once a vanished file has been reported, so that a
	// removed database is reported once rather than every interval.
	missing bool
}

// Open reads and checks the database at path. The error names the path
// and wraps the cause (fs.ErrNotExist for a missing file).
func Open(path string, opts ...Option) (*DB, error) {
	db := &DB{path: path, interval: DefaultCheckInterval, clock: realClock{}}
	for _, o := range opts {
		o(db)
	}
	r, fi, err := load(path)
	if err != nil {
		return nil, fmt.Errorf("opening geoip database: %w", err)
	}
	db.reader.Store(r)
	db.loaded = fi
	db.mu.Lock()
	db.scheduleLocked()
	db.mu.Unlock()
	return db, nil
}

// load reads the file into memory and checks it. The FileInfo comes from
// the open file, so it describes exactly the bytes that were read even if
// the path is replaced meanwhile.
func load(path string) (*maxminddb.Reader, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	// A file still being written may be shorter than its size said a
	// moment ago: ReadFull fails then, and the next check retries.
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := probe(r); err != nil {
		return nil, nil, fmt.Errorf("verifying %s: %w", path, err)
	}
	return r, fi, nil
}

// probe looks up and decodes one address in every IPv4 /8 and every IPv6
// /16 of the global unicast range. OpenBytes only parses the metadata, so
// this is what catches a damaged search tree or data section before the
// swap rather than as failed lookups after it. The library's Verify walks
// every record instead: measured here at 3.5 µs per record, tens of seconds
// of CPU for a full City database, too much to block Open.
func probe(r *maxminddb.Reader) error {
	check := func(ip netip.Addr) error {
		var rec cityRecord
		if err := r.Lookup(ip).Decode(&rec); err != nil {
			return fmt.Errorf("looking up %v: %w", ip, err)
		}
		return nil
	}
	for a := range 256 {
		if err := check(netip.AddrFrom4([4]byte{byte(a), 0, 0, 1})); err != nil {
			return err
		}
	}
	if r.Metadata.IPVersion != 6 {
		return nil
	}
	for hi := 0x20; hi < 0x40; hi++ {
		for lo := 0; lo < 256; lo += 32 {
			if err := check(netip.AddrFrom16([16]byte{byte(hi), byte(lo), 15: 1})); err != nil {
				return err
			}
		}
	}
	return nil
}

// Path returns the database file's path.
func (db *DB) Path() string {
	if db == nil {
		return ""
	}
	return db.path
}

// cityRecord is the part of a GeoLite2-City record that Lookup uses.
type cityRecord struct {
	City struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Subdivisions []struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Location struct {
		Latitude  float64 `maxminddb:"latitude"`
		Longitude float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

// Lookup returns where ip is. Unknown addresses (including private and
// loopback ones, which public databases do not list), invalid addresses, a
// closed or nil DB and damaged records all give the zero Location. IPv4
// addresses mapped into IPv6 (::ffff:a.b.c.d) are looked up as IPv4.
func (db *DB) Lookup(ip netip.Addr) session.Location {
	if db == nil || !ip.IsValid() {
		return session.Location{}
	}
	r := db.reader.Load()
	if r == nil {
		return session.Location{}
	}
	res := r.Lookup(ip.Unmap())
	if !res.Found() {
		return session.Location{}
	}
	// Declared after the Found check: Decode makes rec escape, and
	// unknown addresses need not pay for the allocation.
	var rec cityRecord
	if err := res.Decode(&rec); err != nil {
		return session.Location{}
	}
	loc := session.Location{
		City:      rec.City.Names.EN,
		Country:   upperASCII(rec.Country.ISOCode),
		Latitude:  rec.Location.Latitude,
		Longitude: rec.Location.Longitude,
	}
	if len(rec.Subdivisions) > 0 {
		loc.Region = rec.Subdivisions[0].Names.EN
	}
	return loc
}

// upperASCII upper-cases s without allocating in the usual case where it
// already is (MaxMind writes ISO codes upper-case).
func upperASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			return strings.ToUpper(s)
		}
	}
	return s
}

// scheduleLocked arms the timer for the next periodic check. db.mu must be
// held.
func (db *DB) scheduleLocked() {
	if db.interval > 0 && !db.closed {
		db.stop = db.clock.AfterFunc(db.interval, db.tick)
	}
}

// tick is the periodic check, run by the timer.
func (db *DB) tick() {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return
	}
	db.checkLocked(false)
	db.scheduleLocked()
}

// Reload checks the file now, whatever the interval, and opens it when it
// changed or when the last attempt failed. It returns the error of that
// attempt (nil when the file in service is current) and leaves the old
// database in service on failure.
func (db *DB) Reload() error {
	if db == nil {
		return nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return ErrClosed
	}
	return db.checkLocked(true)
}

// Err returns the error of the latest check: why a replaced file could not
// be opened, or nil when the database in service is the file on disk.
func (db *DB) Err() error {
	if db == nil {
		return nil
	}
	if p := db.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (db *DB) setErr(err error) {
	if err == nil {
		db.err.Store(nil)
		return
	}
	db.err.Store(&err)
}

func (db *DB) report(err error) {
	if db.onReload != nil {
		db.onReload(err)
	}
}

// checkLocked compares the file with the one in service and reopens it if
// it changed. With retry, a file that failed before is tried again even if
// unchanged. db.mu must be held.
func (db *DB) checkLocked(retry bool) error {
	if db.closed {
		return ErrClosed
	}
	fi, err := os.Stat(db.path)
	if err != nil {
		// Keep serving: a removed file is more likely an operator mistake
		// or a non-atomic update tool than a wish to lose GeoIP.
		err = fmt.Errorf("checking geoip database: %w", err)
		db.setErr(err)
		if !db.missing {
			db.missing = true
			db.report(err)
		}
		return err
	}
	db.missing = false
	if sameFile(fi, db.loaded) {
		db.failed = nil
		db.setErr(nil)
		return nil
	}
	if !retry && db.failed != nil && sameFile(fi, db.failed) {
		return db.Err()
	}
	r, lfi, err := load(db.path)
	if err != nil {
		err = fmt.Errorf("reloading geoip database: %w", err)
		db.failed = fi
		db.setErr(err)
		db.report(err)
		return err
	}
	db.reader.Store(r)
	db.loaded = lfi
	db.failed = nil
	db.setErr(nil)
	db.report(nil)
	return nil
}

// sameFile reports whether a and b describe the same, unchanged file: same
// inode (a rename replaces it), size and modification time (an in-place
// copy changes these).
func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) &&
		a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// Close stops the periodic check and releases the database. Lookups after
// Close return the zero Location; lookups in flight finish on the old
// reader, whose memory the garbage collector reclaims. Close waits for a
// check in progress.
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	db.closed = true
	if db.stop != nil {
		db.stop()
		db.stop = nil
	}
	db.reader.Store(nil)
	return nil
}
