package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// jsonTime is a time written as RFC 3339 in UTC, or null when zero, so that
// "never" does not read as the year 1.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	return tt.UTC().MarshalJSON()
}

// sessionJSON is a session as the API shows it. It is a separate type, not
// session.Session with tags, so that nothing added to Session later (tokens,
// secrets) leaks by default.
type sessionJSON struct {
	ID           string   `json:"id"`
	User         string   `json:"user"`
	Email        string   `json:"email"`
	Name         string   `json:"name"`
	Username     string   `json:"preferred_username"`
	Groups       []string `json:"groups"`
	Site         string   `json:"site"`
	CreatedAt    jsonTime `json:"created_at"`
	LastAccess   jsonTime `json:"last_access"`
	ExpiresAt    jsonTime `json:"expires_at"`
	IP           string   `json:"ip"`
	LastIP       string   `json:"last_ip"`
	UserAgent    string   `json:"user_agent"`
	Browser      string   `json:"browser"`
	OS           string   `json:"os"`
	Device       string   `json:"device"`
	City         string   `json:"city"`
	Region       string   `json:"region"`
	Country      string   `json:"country"`
	Latitude     float64  `json:"latitude"`
	Longitude    float64  `json:"longitude"`
	IDPSessionID string   `json:"idp_sid"`
	// AMR is how the user authenticated (RFC 8176 values, [] when the
	// provider did not say) and MFA whether that included a second factor.
	AMR []string `json:"amr"`
	MFA bool     `json:"mfa"`
	// InactiveFor is now − last_access and Duration now − created_at, in
	// whole seconds.
	InactiveFor int64 `json:"inactive_for"`
	Duration    int64 `json:"duration"`
	// Current is set only in /me listings: whether this is the caller's
	// own browser.
	Current *bool `json:"current,omitempty"`
}

func toSessionJSON(s *session.Session, now time.Time) sessionJSON {
	groups := s.Groups
	if groups == nil {
		groups = []string{}
	}
	amr := s.AMR
	if amr == nil {
		amr = []string{}
	}
	return sessionJSON{
		ID:           s.ID,
		User:         s.User,
		Email:        s.Email,
		Name:         s.Name,
		Username:     s.Username,
		Groups:       groups,
		Site:         s.Site,
		CreatedAt:    jsonTime(s.CreatedAt),
		LastAccess:   jsonTime(s.LastAccess),
		ExpiresAt:    jsonTime(s.ExpiresAt),
		IP:           s.IP,
		LastIP:       s.LastIP,
		UserAgent:    s.UserAgent,
		Browser:      s.Browser,
		OS:           s.OS,
		Device:       s.Device.Device,
		City:         s.City,
		Region:       s.Region,
		Country:      s.Country,
		Latitude:     s.Latitude,
		Longitude:    s.Longitude,
		IDPSessionID: s.IDPSessionID,
		AMR:          amr,
		MFA:          s.MFA,
		InactiveFor:  seconds(now.Sub(s.LastAccess)),
		Duration:     seconds(now.Sub(s.CreatedAt)),
	}
}

// seconds rounds d down to whole seconds; a negative span (clocks of two
// instances disagreeing) reads as 0.
func seconds(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}

type userJSON struct {
	User           string   `json:"user"`
	Email          string   `json:"email"`
	LastLogin      jsonTime `json:"last_login"`
	LastLogout     jsonTime `json:"last_logout"`
	Status         string   `json:"status"`
	ActiveSessions int      `json:"active_sessions"`
	LastIP         string   `json:"last_ip"`
}

func toUserJSON(u session.User) userJSON {
	return userJSON{
		User:           u.User,
		Email:          u.Email,
		LastLogin:      jsonTime(u.LastLogin),
		LastLogout:     jsonTime(u.LastLogout),
		Status:         userStatus(u),
		ActiveSessions: u.ActiveSessions,
		LastIP:         u.LastIP,
	}
}

// userStatus derives the status from the count when a store leaves it
// empty, so the field always holds one of the two documented values.
func userStatus(u session.User) string {
	if u.ActiveSessions > 0 {
		return "active"
	}
	return "signed_out"
}

// eventOut is an event as the API shows it: activity.Event already has
// the documented field names; only the time is pinned to UTC.
func eventOut(e activity.Event) activity.Event {
	e.Time = e.Time.UTC()
	return e
}

// list is the shape of every listing.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

type errorJSON struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

// Error codes of the JSON API.
const (
	codeBadRequest  = "bad_request"
	codeForbidden   = "forbidden"
	codeNotFound    = "not_found"
	codeMethod      = "method_not_allowed"
	codeUnavailable = "unavailable"
	codeInternal    = "internal_error"
)

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorJSON{Error: code, Message: msg})
}
