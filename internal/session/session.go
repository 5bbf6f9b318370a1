// Package session holds the gateway's central types: the Session a browser
// carries, the Store that keeps sessions, the cookie codec, the sealing of
// tokens at rest and the local cache that keeps the request path off the
// network. It knows nothing of Caddy, Redis or HTTP handlers.
package session

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Sentinel errors shared by every Store.
var (
	// ErrNotFound means no such session exists (never did, ended or expired).
	ErrNotFound = errors.New("session not found")
	// ErrUnavailable means the store cannot be reached; callers degrade
	// (cached sessions keep working) instead of treating it as "signed out".
	ErrUnavailable = errors.New("session store unavailable")
	// ErrInvalidQuery means a listing's cursor or sort is not one the store
	// made or knows: the caller's input is wrong (a 400, not a 500).
	ErrInvalidQuery = errors.New("invalid session query")
)

// Device is what the user agent says about the browser, summarised.
type Device struct {
	UserAgent string `json:"user_agent"`
	// Browser is a family name such as Chrome, Firefox, Safari or Edge.
	Browser string `json:"browser"`
	// OS is a family name such as Windows, macOS, Linux, iOS or Android.
	OS string `json:"os"`
	// Device is one of desktop, mobile, tablet or bot.
	Device string `json:"device"`
}

// Label is the short description events and pages show, e.g. "Chrome on
// Windows", or whatever part is known; "" when nothing is.
func (d Device) Label() string {
	switch {
	case d.Browser != "" && d.OS != "":
		return d.Browser + " on " + d.OS
	case d.Browser != "":
		return d.Browser
	}
	return d.OS
}

// Location is where an IP address is, from a GeoIP lookup. The zero value
// means unknown.
type Location struct {
	City string `json:"city"`
	// Region is the English name of the first subdivision.
	Region string `json:"region"`
	// Country is an ISO 3166-1 alpha-2 code.
	Country   string  `json:"country"`
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

// Session is one signed-in browser. Values are treated as immutable once
// shared (the cache hands the same pointer to concurrent requests): copy
// before changing.
type Session struct {
	// ID is the public handle, shown to admins and used in URLs. It is
	// derived from the cookie secret by a one-way function, so knowing it
	// does not let anyone in.
	ID string `json:"id"`
	// User is the provider's subject (sub claim).
	User  string `json:"user"`
	Email string `json:"email"`
	// EmailVerified is the provider's email_verified claim. An unverified
	// email is shown but grants nothing (allow_emails, admin_emails, the
	// email lookup of the admin API).
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Username      string   `json:"preferred_username"`
	Groups        []string `json:"groups"`
	// Site is the host (with port when not the default) where the session
	// was created.
	Site       string    `json:"site"`
	CreatedAt  time.Time `json:"created_at"`
	LastAccess time.Time `json:"last_access"`
	// ExpiresAt is the end of the maximum lifetime.
	ExpiresAt time.Time `json:"expires_at"`
	// IdleTimeout is the creating site's idle timeout; 0 means none. It lets
	// a background sweep find idle sessions without knowing site configs.
	IdleTimeout time.Duration `json:"idle_timeout"`
	// IP is the client address at sign-in; LastIP the latest seen.
	IP     string `json:"ip"`
	LastIP string `json:"last_ip"`
	Device
	Location
	// IDPSessionID is the provider's sid claim, for back-channel logout.
	IDPSessionID string `json:"idp_sid"`
	// AMR lists how the user authenticated (the ID token's amr claim,
	// RFC 8176 values such as pwd, otp, hwk, mfa).
	AMR []string `json:"amr"`
	// MFA tells whether AMR shows a second factor (see policy.MFA).
	MFA bool `json:"mfa"`
	// IssuerKey names the provider that signed the session in
	// (IssuerKey of its issuer URL). Subjects are unique only per issuer,
	// so a session is valid only on sites of the same provider, and a
	// provider's back-channel logout ends only its own sessions. Empty
	// for sessions from before it was recorded, which every site takes.
	IssuerKey string `json:"-"`
	// Tokens is an opaque, sealed (see Sealer) token blob a store keeps for
	// the session: the refresh and access tokens of a site with refresh on
	// (its layout is the gateway's). Sessions of other sites have none:
	// the ID token for sign-out stays in the browser.
	Tokens []byte `json:"-"`
}

// Deadline is when the session ends unless used again: the earlier of the
// idle deadline and the maximum lifetime.
func (s *Session) Deadline() time.Time {
	d := s.ExpiresAt
	if s.IdleTimeout > 0 {
		if idle := s.LastAccess.Add(s.IdleTimeout); d.IsZero() || idle.Before(d) {
			d = idle
		}
	}
	return d
}

// Expiry tells whether the session has ended by time at now, and why.
// It returns "" while the session is alive, otherwise ReasonIdle or
// ReasonLifetime. idle overrides the session's own idle timeout when
// positive (a site's own policy applies on every request).
func (s *Session) Expiry(now time.Time, idle time.Duration) string {
	if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
		return EndLifetime
	}
	if idle <= 0 {
		idle = s.IdleTimeout
	}
	if idle > 0 && now.Sub(s.LastAccess) >= idle {
		return EndIdle
	}
	return ""
}

// Clone returns a copy that may be changed without affecting s.
func (s *Session) Clone() *Session {
	c := *s
	c.Groups = append([]string(nil), s.Groups...)
	c.AMR = append([]string(nil), s.AMR...)
	c.Tokens = append([]byte(nil), s.Tokens...)
	return &c
}

// Why a session ended. These are also activity event types.
const (
	EndLogout      = "logout"
	EndRevoked     = "session_revoked"
	EndOthers      = "sessions_revoked_others"
	EndIdle        = "session_expired_idle"
	EndLifetime    = "session_expired_lifetime"
	EndNewLogin    = "session_ended_new_login"
	EndBackchannel = "backchannel_logout"
	EndRefresh     = "refresh_failed"
	EndIPConflict  = "ip_conflict"
)

// Access is one use of a session, recorded by Store.Touch.
type Access struct {
	At time.Time
	IP string
	// Location, when non-nil, replaces the session's location (it follows
	// LastIP). Device, when non-nil, replaces the device summary.
	Location *Location
	Device   *Device
}

// Sort orders for Query.
const (
	SortLastAccess = "last_access" // most recent first; the default
	SortCreated    = "created_at"  // newest sign-in first
)

// Query selects sessions for List. Zero fields match everything.
type Query struct {
	// User is an exact subject.
	User string
	// IPPrefix matches the start of the login IP or the last IP.
	IPPrefix string
	// Country is an ISO code, matched case-insensitively.
	Country string
	// Site is an exact site.
	Site string
	// Sites, when non-nil, restricts the listing to sessions of these
	// sites (an admin's reach); a non-nil empty slice matches nothing.
	Sites []string
	// Sort is SortLastAccess (default) or SortCreated; a leading "-" is
	// accepted and ignored (the order is always newest first).
	Sort string
	// Cursor is a Page.Next from an earlier call.
	Cursor string
	// Limit is the page size; stores cap it (default 100).
	Limit int
}

// Page sizes of List and Users.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// PageSize is the page size a store serves for a requested limit: the
// default for none, capped at MaxLimit (the API refuses more with a 400).
func PageSize(limit int) int {
	if limit <= 0 {
		return DefaultLimit
	}
	return min(limit, MaxLimit)
}

// ByCreated tells which order q.Sort asks for; an unknown sort wraps
// ErrInvalidQuery.
func (q *Query) ByCreated() (bool, error) {
	switch strings.TrimPrefix(q.Sort, "-") {
	case "", SortLastAccess:
		return false, nil
	case SortCreated:
		return true, nil
	}
	return false, fmt.Errorf("%w: unknown sort %q", ErrInvalidQuery, q.Sort)
}

// Match reports whether s passes q's filters (Cursor, Sort and Limit
// aside). Stores that cannot filter natively use it.
func (q *Query) Match(s *Session) bool {
	if q.User != "" && s.User != q.User {
		return false
	}
	if q.IPPrefix != "" && !strings.HasPrefix(s.IP, q.IPPrefix) && !strings.HasPrefix(s.LastIP, q.IPPrefix) {
		return false
	}
	if q.Country != "" && !strings.EqualFold(s.Country, q.Country) {
		return false
	}
	if q.Sites != nil && !slices.Contains(q.Sites, s.Site) {
		return false
	}
	return q.Site == "" || s.Site == q.Site
}

// IssuerKey is the short, stable name sessions record for an issuer URL:
// 12 base64url characters of its SHA-256 (72 bits; a handful of issuers
// share a store), so that each session spends 13 bytes, not a URL.
func IssuerKey(issuer string) string {
	sum := sha256.Sum256([]byte(issuer))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// EmailKey is the form under which stores index an email for
// UserByEmail: lower case in ASCII only. Unicode lower-casing would give
// an address with a Kelvin sign (U+212A) the key of one with a "k", and
// let its owner stand in for another user in the admin API's lookup.
func EmailKey(email string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, email)
}

// Page is one page of a listing; Next is empty on the last page.
type Page struct {
	Items []*Session
	Next  string
}

// User summarises one user's sessions for the admin Users view.
type User struct {
	User       string    `json:"user"`
	Email      string    `json:"email"`
	LastLogin  time.Time `json:"last_login"`
	LastLogout time.Time `json:"last_logout"`
	// Status is "active" when ActiveSessions > 0, else "signed_out".
	Status         string `json:"status"`
	ActiveSessions int    `json:"active_sessions"`
	LastIP         string `json:"last_ip"`
}

// UserQuery selects users for Users, most recent login first.
type UserQuery struct {
	// Prefix matches the start of the subject or the email, case-insensitively.
	Prefix string
	Cursor string
	Limit  int
}

// UserPage is one page of users.
type UserPage struct {
	Items []User
	Next  string
}

// Store keeps sessions. Implementations must be safe for concurrent use and
// must make an ended session unusable on every gateway instance sharing the
// store: Delete publishes the end, Subscribe receives it.
type Store interface {
	// Create saves a new session and records the login on the user's
	// summary.
	Create(ctx context.Context, s *Session) error
	// Get returns the session or ErrNotFound.
	Get(ctx context.Context, id string) (*Session, error)
	// Touch records an access. It never brings back an ended session: it
	// returns ErrNotFound when the session is gone.
	Touch(ctx context.Context, id string, a Access) error
	// SetTokens replaces the sealed token set of a live session (after a
	// refresh); empty tokens remove it. Like Touch it never brings back an
	// ended session: it returns ErrNotFound when the session is gone or
	// past its deadline.
	SetTokens(ctx context.Context, id string, tokens []byte) error
	// LimitSessions ends, as Delete does (recording and publishing each
	// end), the least recently used sessions of l.User beyond l.Max,
	// atomically, so that concurrent sign-ins on several instances leave
	// exactly l.Max sessions; it returns the ended sessions as they were.
	LimitSessions(ctx context.Context, l Limit) ([]*Session, error)
	// Delete ends a session, records the end on the user's summary,
	// publishes the id to every subscriber and returns the session as it
	// was. It returns ErrNotFound when the session was already gone, so
	// that exactly one caller reports an end.
	Delete(ctx context.Context, id string) (*Session, error)
	// List returns sessions matching q, newest first by q.Sort.
	List(ctx context.Context, q Query) (Page, error)
	// Users returns user summaries, most recent login first.
	Users(ctx context.Context, q UserQuery) (UserPage, error)
	// Due returns up to n sessions whose Deadline is at or before t, for the
	// background sweep.
	Due(ctx context.Context, t time.Time, n int) ([]*Session, error)
	// Subscribe calls ended with the id of every session ended through any
	// instance, and with "" when deliveries may have been missed (after a
	// reconnect), meaning "forget everything cached". It returns when ctx
	// is done.
	Subscribe(ctx context.Context, ended func(id string)) error
	// ClaimOnce marks key as used for ttl and reports whether this call was
	// the first; it makes login states single-use.
	ClaimOnce(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Claimed reports whether key is marked by ClaimOnce, without marking
	// it.
	Claimed(ctx context.Context, key string) (bool, error)
	// UserByEmail returns the subject whose verified email is email
	// (compared case-insensitively), the most recently signed-in one when
	// several share it, or ErrNotFound. Unverified emails are not indexed.
	UserByEmail(ctx context.Context, email string) (string, error)
	// SetReauth records that user's next sign-in must be a fresh
	// authentication at the provider, not older than t. A later call with
	// an earlier t does not lower it.
	SetReauth(ctx context.Context, user string, t time.Time) error
	// Reauth returns the time SetReauth recorded for user, or the zero
	// time when there is none.
	Reauth(ctx context.Context, user string) (time.Time, error)
	// AddSite records that a site is served by a gateway whose admin
	// rules have the given scope (an opaque name of the rules), so that
	// every instance can tell which admins reach which sites.
	AddSite(ctx context.Context, site, scope string) error
	// SiteScopes returns every recorded site with the scopes of the
	// gateways that serve it (at most MaxSites sites).
	SiteScopes(ctx context.Context) (map[string][]string, error)
}

// Limit says which sessions LimitSessions keeps.
type Limit struct {
	User string
	// IssuerKey, when set, counts only the user's sessions of that
	// issuer: subjects are unique per issuer only, and another provider's
	// user of the same subject is someone else.
	IssuerKey string
	// Keep is the sign-in that asks. A last access after now (another
	// instance's clock ahead) ranks as now, and equal ranks go by creation
	// (then Keep first), so skew cannot make the new session the least
	// recently used, while concurrent sign-ins still leave the Max most
	// recently used.
	Keep string
	// Max is how many sessions stay; 0 or less ends nothing.
	Max int
}

// MaxSites bounds the site registry (Store.AddSite): site names come from
// Host headers, so a catch-all site must not let clients grow it without
// end.
const MaxSites = 4096
