// Package activity is the audit log: the events gatehouse records for every
// sign-in outcome, session end and admin action, the filters to query them,
// and the Store interface that keeps them.
package activity

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// ErrInvalidCursor means a cursor is not one the store made: the caller's
// input is wrong (a 400, not a 500).
var ErrInvalidCursor = errors.New("invalid event cursor")

// Event types. Session ends use the same names as session.End* constants.
const (
	LoginSucceeded    = "login_succeeded"
	LoginFailed       = "login_failed"
	Logout            = "logout"
	SessionRevoked    = "session_revoked"
	RevokedOthers     = "sessions_revoked_others"
	ExpiredIdle       = "session_expired_idle"
	ExpiredLifetime   = "session_expired_lifetime"
	EndedNewLogin     = "session_ended_new_login"
	IPConflict        = "ip_conflict"
	AccessDenied      = "access_denied"
	RefreshFailed     = "refresh_failed"
	BackchannelLogout = "backchannel_logout"
	Anomaly           = "anomaly"
	AdminExport       = "admin_export"
)

// Types lists every event type, for validating filters.
var Types = []string{
	LoginSucceeded, LoginFailed, Logout, SessionRevoked, RevokedOthers,
	ExpiredIdle, ExpiredLifetime, EndedNewLogin, IPConflict, AccessDenied,
	RefreshFailed, BackchannelLogout, Anomaly, AdminExport,
}

// endTypes are the types of events that end a session.
var endTypes = []string{
	Logout, SessionRevoked, RevokedOthers, ExpiredIdle, ExpiredLifetime,
	EndedNewLogin, IPConflict, RefreshFailed, BackchannelLogout,
}

// EndsSession reports whether events of type typ end a session: they carry
// its final Inactivity and Duration, and complete its login history row.
func EndsSession(typ string) bool { return slices.Contains(endTypes, typ) }

// Reasons carried by login_failed and access_denied events.
const (
	ReasonStateMismatch   = "state_mismatch"
	ReasonIDPError        = "idp_error"
	ReasonTokenInvalid    = "token_invalid"
	ReasonNotAllowedGroup = "not_allowed_group"
	ReasonIPRestricted    = "ip_restricted"
	ReasonCountry         = "country_restricted"
	ReasonStoreError      = "store_error"
	ReasonEmailUnverified = "email_unverified"
	ReasonReauthRequired  = "reauth_required"
	ReasonMFARequired     = "mfa_required" // same as policy.ReasonMFA
)

// ActorSystem is the actor of events nobody in particular caused.
const ActorSystem = "system"

// Event is one line of the audit log.
type Event struct {
	// ID is assigned by the store; it orders events and serves as a cursor.
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	User      string    `json:"user"`
	Email     string    `json:"email"`
	SessionID string    `json:"session_id"`
	Site      string    `json:"site"`
	IP        string    `json:"ip"`
	City      string    `json:"city"`
	Country   string    `json:"country"`
	Device    string    `json:"device"`
	// Inactivity is how long the session had been unused when it ended,
	// in whole seconds; 0 on events that end no session.
	Inactivity int64 `json:"inactivity_duration"`
	// Duration is how long the session lasted, sign-in to end, in whole
	// seconds; 0 on events that end no session.
	Duration int64  `json:"duration"`
	Reason   string `json:"reason"`
	// Actor is the email of whoever caused the event (an admin revoking a
	// session), or "system".
	Actor string `json:"actor"`
	// Detail is free text: the evidence of an anomaly, the filter of an
	// export, or how many like events one aggregated event stands for.
	Detail string `json:"detail"`
	// MFA, on login_succeeded, tells whether the sign-in used a second
	// factor.
	MFA bool `json:"mfa"`
	// IssuerKey, on login_succeeded, is the session's session.IssuerKey:
	// it goes to the login history row only (not the log, nor JSON), so
	// that /me/history can tell one provider's user from another's of the
	// same subject.
	IssuerKey string `json:"-"`
}

// Filter selects events. Zero fields match everything.
type Filter struct {
	From, To time.Time // inclusive bounds on Time
	User     string    // exact subject or email
	IPPrefix string    // start of the IP
	Types    []string  // any of these types
	Site     string    // exact site
	// Sites, when non-nil, restricts events to these sites (an admin's
	// reach); a non-nil empty slice matches nothing.
	Sites  []string
	Cursor string // Page.Next of an earlier call
	Limit  int    // page size: default DefaultLimit, at most MaxLimit
}

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Match reports whether e passes f (ignoring Cursor and Limit). Stores that
// cannot filter natively use it.
func (f *Filter) Match(e *Event) bool {
	if !f.From.IsZero() && e.Time.Before(f.From) {
		return false
	}
	if !f.To.IsZero() && e.Time.After(f.To) {
		return false
	}
	if f.User != "" && e.User != f.User && !strings.EqualFold(e.Email, f.User) {
		return false
	}
	if f.IPPrefix != "" && !strings.HasPrefix(e.IP, f.IPPrefix) {
		return false
	}
	if f.Site != "" && e.Site != f.Site {
		return false
	}
	if f.Sites != nil && !slices.Contains(f.Sites, e.Site) {
		return false
	}
	if len(f.Types) > 0 {
		ok := false
		for _, t := range f.Types {
			if t == e.Type {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Page is one page of events, newest first; Next is empty on the last page.
type Page struct {
	Items []Event
	Next  string
}

// Store keeps events for the retention period.
type Store interface {
	// Append records e, assigning e.ID.
	Append(ctx context.Context, e *Event) error
	// Query returns events matching f, newest first.
	Query(ctx context.Context, f Filter) (Page, error)
	// Trim drops events older than before.
	Trim(ctx context.Context, before time.Time) error
}

// Exporter may be implemented by a Store that can hand over every event
// a filter matches in one pass, faster than page by page (redisstore
// reads all its shards ahead while the caller writes).
type Exporter interface {
	// Export calls each with every event f matches (f.Limit is ignored),
	// newest first, from f.Cursor on, until each returns an error, which
	// Export then returns. The event is valid only during the call.
	Export(ctx context.Context, f Filter, each func(*Event) error) error
}

// Export calls each with every event in st that f matches, newest first:
// through st's Export when it has one, else page by page.
func Export(ctx context.Context, st Store, f Filter, each func(*Event) error) error {
	if x, ok := st.(Exporter); ok {
		return x.Export(ctx, f, each)
	}
	return Pages(ctx, st.Query, f, each)
}

// Pages calls each with every event f matches, reading them with query
// a page of MaxLimit at a time.
func Pages(ctx context.Context, query func(context.Context, Filter) (Page, error), f Filter, each func(*Event) error) error {
	f.Limit = MaxLimit
	for {
		page, err := query(ctx, f)
		if err != nil {
			return err
		}
		for i := range page.Items {
			if err := each(&page.Items[i]); err != nil {
				return err
			}
		}
		if page.Next == "" || page.Next == f.Cursor {
			return nil
		}
		f.Cursor = page.Next
	}
}
