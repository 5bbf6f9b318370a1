package activity

import (
	"context"
	"strings"
	"time"
)

// StatusActive is the Status of a login whose session has not ended.
// Ended logins have the type of the event that ended them, or
// StatusEnded when the session is gone but no end event was recorded (yet:
// a store deletes the session a moment before the gateway records why).
const (
	StatusActive = "active"
	StatusEnded  = "ended"
)

// Login is one row of the login history: one session, from the
// login_succeeded event that began it to the event that ended it (SPEC,
// "/api/history").
type Login struct {
	SessionID string `json:"session_id"`
	User      string `json:"user"`
	Email     string `json:"email"`
	Site      string `json:"site"`
	IP        string `json:"ip"`
	City      string `json:"city"`
	Country   string `json:"country"`
	// Device is the event's device label ("Chrome on Windows"); Browser
	// and OS are its parts (SplitDevice).
	Device    string    `json:"device"`
	Browser   string    `json:"browser"`
	OS        string    `json:"os"`
	MFA       bool      `json:"mfa"`
	LoginTime time.Time `json:"login_time"`
	// EndTime is zero while the session lasts.
	EndTime time.Time `json:"end_time"`
	// Duration is seconds from login to the end, or to now while active.
	Duration int64 `json:"duration"`
	// Inactivity is the final inactivity in seconds, or how long an active
	// session has been unused, when the store knows.
	Inactivity int64 `json:"inactivity_duration"`
	// Status is StatusActive, the ending event's type, or StatusEnded.
	Status string `json:"status"`
	// IssuerKey is the login event's; "" for logins recorded without it.
	IssuerKey string `json:"-"`
}

// HistoryFilter selects logins. Zero fields match everything.
type HistoryFilter struct {
	// User is the exact subject (callers resolve emails first).
	User     string
	From, To time.Time // inclusive bounds on the login time
	Site     string    // exact site
	// Sites, when non-nil, restricts logins to these sites (an admin's
	// reach); a non-nil empty slice matches nothing.
	Sites  []string
	Cursor string // HistoryPage.Next of an earlier call
	Limit  int    // page size: default DefaultLimit, at most MaxLimit
}

// Match reports whether l passes f (ignoring Cursor and Limit).
func (f *HistoryFilter) Match(l *Login) bool {
	switch {
	case f.User != "" && l.User != f.User,
		!f.From.IsZero() && l.LoginTime.Before(f.From),
		!f.To.IsZero() && l.LoginTime.After(f.To),
		f.Site != "" && l.Site != f.Site:
		return false
	case f.Sites != nil:
		for _, s := range f.Sites {
			if s == l.Site {
				return true
			}
		}
		return false
	}
	return true
}

// HistoryPage is one page of logins, newest login first; Next is empty on
// the last page.
type HistoryPage struct {
	Items []Login
	Next  string
}

// HistoryStore keeps the login history. Stores that implement it build the
// history from the events they are given (Store.Append): a login_succeeded
// event with a session id begins a row, the first event of that session
// for which EndsSession is true completes it, and Trim drops rows whose
// login is older than its bound, as it drops events; the rows are capped
// at half the events' cap (a session makes at least two events).
type HistoryStore interface {
	History(ctx context.Context, f HistoryFilter) (HistoryPage, error)
}

// SplitDevice splits a device label as session.Device.Label makes it
// ("Chrome on Windows") into browser and OS; a label of one part is
// taken as the browser.
func SplitDevice(label string) (browser, os string) {
	b, o, ok := strings.Cut(label, " on ")
	if !ok {
		return label, ""
	}
	return b, o
}

// LoginFrom is the history row that a login_succeeded event begins.
func LoginFrom(e *Event) Login {
	b, o := SplitDevice(e.Device)
	return Login{
		SessionID: e.SessionID, User: e.User, Email: e.Email, Site: e.Site, IP: e.IP,
		City: e.City, Country: e.Country, Device: e.Device, Browser: b, OS: o,
		MFA: e.MFA, LoginTime: e.Time, Status: StatusActive, IssuerKey: e.IssuerKey,
	}
}

// EndWith completes l with the event that ended its session.
func (l *Login) EndWith(e *Event) {
	l.EndTime, l.Status = e.Time, e.Type
	l.Duration, l.Inactivity = e.Duration, e.Inactivity
}
