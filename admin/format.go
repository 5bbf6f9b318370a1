package admin

import (
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// ago says how long before now t was, the way people say it ("3 minutes
// ago"); beyond a month the date says more.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 45*time.Second:
		// Includes small negative spans from instances whose clocks
		// disagree slightly.
		return "just now"
	case d < 90*time.Second:
		return "1 minute ago"
	case d < 45*time.Minute:
		return fmt.Sprintf("%d minutes ago", int((d+30*time.Second)/time.Minute))
	case d < 90*time.Minute:
		return "1 hour ago"
	case d < 22*time.Hour:
		return fmt.Sprintf("%d hours ago", int((d+30*time.Minute)/time.Hour))
	case d < 36*time.Hour:
		return "yesterday"
	case d < 30*24*time.Hour:
		return fmt.Sprintf("%d days ago", int((d+12*time.Hour)/(24*time.Hour)))
	}
	return "on " + t.UTC().Format("2 Jan 2006")
}

// span is a compact duration for tables: "45 s", "3 min", "2 h 5 min",
// "3 d 4 h".
func span(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%d d", days)
	}
	return fmt.Sprintf("%d d %d h", days, h)
}

// absTime is the unambiguous form shown next to relative times; the
// pages' script rewrites it into the reader's own time zone.
func absTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2 Jan 2006, 15:04 UTC")
}

func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// deviceLabel is the device's label, or a word for an unknown one.
func deviceLabel(d session.Device) string {
	if l := d.Label(); l != "" {
		return l
	}
	return "Unknown browser"
}

// deviceKind is the device class for icons and labels; unknown stays
// "unknown" rather than a guess.
func deviceKind(d session.Device) string {
	switch d.Device {
	case "desktop", "mobile", "tablet", "bot":
		return d.Device
	}
	return "unknown"
}

func kindLabel(kind string) string {
	switch kind {
	case "desktop":
		return "Desktop"
	case "mobile":
		return "Mobile"
	case "tablet":
		return "Tablet"
	case "bot":
		return "Automated client"
	}
	return "Unknown device"
}

// place joins city, region and country, dropping empty parts and a region
// that repeats the city (Singapore, Singapore).
func place(city, region, country string) string {
	var parts []string
	for _, p := range []string{city, region, country} {
		if p != "" && (len(parts) == 0 || !strings.EqualFold(parts[len(parts)-1], p)) {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}

// eventLabels are the activity types as people read them.
var eventLabels = map[string]string{
	activity.LoginSucceeded:    "Signed in",
	activity.LoginFailed:       "Sign-in failed",
	activity.Logout:            "Signed out",
	activity.SessionRevoked:    "Session revoked",
	activity.RevokedOthers:     "Signed out elsewhere",
	activity.ExpiredIdle:       "Expired (idle)",
	activity.ExpiredLifetime:   "Expired (lifetime)",
	activity.EndedNewLogin:     "Ended by newer sign-in",
	activity.IPConflict:        "Ended (IP changed)",
	activity.AccessDenied:      "Access denied",
	activity.RefreshFailed:     "Token refresh failed",
	activity.BackchannelLogout: "Signed out by provider",
	activity.Anomaly:           "Anomaly",
	activity.AdminExport:       "Log exported",
}

func eventLabel(typ string) string {
	if l, ok := eventLabels[typ]; ok {
		return l
	}
	return typ
}

// eventTone colours an event's badge: good news, bad news, or neither.
func eventTone(typ string) string {
	switch typ {
	case activity.LoginSucceeded:
		return "ok"
	case activity.LoginFailed, activity.AccessDenied, activity.Anomaly, activity.IPConflict, activity.RefreshFailed:
		return "bad"
	case activity.SessionRevoked, activity.RevokedOthers, activity.BackchannelLogout:
		return "warn"
	}
	return "neutral"
}

// reasonLabel spells out machine reasons; unknown ones show as they are.
func reasonLabel(r string) string {
	switch r {
	case "":
		return ""
	case activity.ReasonStateMismatch:
		return "invalid or replayed sign-in"
	case activity.ReasonIDPError:
		return "identity provider error"
	case activity.ReasonTokenInvalid:
		return "invalid token"
	case activity.ReasonNotAllowedGroup:
		return "not in an allowed group"
	case activity.ReasonIPRestricted:
		return "IP address not allowed"
	case activity.ReasonCountry:
		return "country not allowed"
	case activity.ReasonStoreError:
		return "session store error"
	}
	return strings.ReplaceAll(r, "_", " ")
}
