// Package metrics holds gatehouse's Prometheus collectors (SPEC,
// "Endpoints": the names and labels are a contract) and the small
// functions the rest of gatehouse counts with.
//
// The collectors live at package level, for the life of the process:
// Caddy gives every config load a fresh registry, and a reload must not
// reset a counter, so caddymodule registers these same collectors into
// each new registry (Register). The counting functions are called on the
// request path: every label value is resolved once, here, so a count is
// an atomic add, with no allocation and no map of labels per call. Label
// values come from fixed lists (event types and reasons gatehouse
// defines, store method names), never from users, addresses or free
// text, so the number of series is bounded; anything unforeseen counts
// as "other".
//
// The package knows nothing of Caddy: caddymodule wires it to the
// gateway's hooks (gateway.RuntimeConfig.CountCheck, CountEvent) and to
// the alert webhook's (alerts.WebhookConfig.CountDelivery).
package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// Results of a session check (gatehouse_session_checks_total{result}),
// as internal/gateway reports them.
const (
	// CheckValid: a live session passed this site's rules.
	CheckValid = "valid"
	// CheckNone: no session cookie, or none that names a session.
	CheckNone = "none"
	// CheckEnded: the cookie of a session that has ended (revoked,
	// expired, signed out elsewhere) or ended by this check (idle,
	// lifetime, ip_conflict).
	CheckEnded = "ended"
	// CheckDenied: a live session this site's identity rules refuse.
	CheckDenied = "denied"
	// CheckError: the store could not say (answered 503).
	CheckError = "error"
)

// CheckResults lists every result label of gatehouse_session_checks_total.
var CheckResults = []string{CheckValid, CheckNone, CheckEnded, CheckDenied, CheckError}

// LoginSuccess is the result label of a sign-in that made a session;
// failures are labelled by their login_failed reason.
const LoginSuccess = "success"

// Other is the label value of anything outside the fixed lists.
const Other = "other"

// LoginResults lists every result label of gatehouse_logins_total:
// success, then the reasons of login_failed events, then other.
var LoginResults = []string{
	LoginSuccess,
	activity.ReasonStateMismatch, activity.ReasonIDPError, activity.ReasonTokenInvalid,
	activity.ReasonNotAllowedGroup, activity.ReasonIPRestricted, activity.ReasonCountry,
	activity.ReasonStoreError, activity.ReasonEmailUnverified, activity.ReasonReauthRequired,
	activity.ReasonMFARequired, Other,
}

// EndReasons lists every reason label of gatehouse_sessions_ended_total:
// the types of the events that end a session.
var EndReasons = []string{
	activity.Logout, activity.SessionRevoked, activity.RevokedOthers,
	activity.ExpiredIdle, activity.ExpiredLifetime, activity.EndedNewLogin,
	activity.IPConflict, activity.RefreshFailed, activity.BackchannelLogout,
}

// AlertRules lists every rule label of gatehouse_alerts_total: the
// anomaly rules (the reasons of anomaly events), then other.
var AlertRules = []string{"new_country", "new_device", "impossible_travel", "shared_ip", "failure_burst", Other}

// Results of an alert delivery (gatehouse_alert_deliveries_total{result}),
// as alerts.WebhookStats names them.
const (
	DeliveryDelivered = "delivered" // the endpoint accepted it (2xx)
	DeliveryFailed    = "failed"    // given up after the last attempt, or refused (4xx)
	DeliveryRetried   = "retried"   // an attempt after the first
	DeliveryDropped   = "dropped"   // not queued: the queue was full
	DeliverySkipped   = "skipped"   // another instance had claimed it
)

// DeliveryResults lists every result label of
// gatehouse_alert_deliveries_total.
var DeliveryResults = []string{DeliveryDelivered, DeliveryFailed, DeliveryRetried, DeliveryDropped, DeliverySkipped}

// Metric names (SPEC, "Endpoints").
const (
	NameSessionsActive  = "gatehouse_sessions_active"
	NameLogins          = "gatehouse_logins_total"
	NameSessionChecks   = "gatehouse_session_checks_total"
	NameSessionsEnded   = "gatehouse_sessions_ended_total"
	NameStoreSeconds    = "gatehouse_store_seconds"
	NameAlerts          = "gatehouse_alerts_total"
	NameAlertDeliveries = "gatehouse_alert_deliveries_total"
)

// Names lists every metric gatehouse exports.
var Names = []string{
	NameSessionsActive, NameLogins, NameSessionChecks, NameSessionsEnded,
	NameStoreSeconds, NameAlerts, NameAlertDeliveries,
}

var (
	logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameLogins,
		Help: "Sign-ins by result: success, or the reason of the login_failed event.",
	}, []string{"result"})
	checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameSessionChecks,
		Help: "Session checks of requests by result: valid, none, ended, denied, error.",
	}, []string{"result"})
	ended = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameSessionsEnded,
		Help: "Sessions ended, by reason (the type of the event that ended them).",
	}, []string{"reason"})
	alertCount = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameAlerts,
		Help: "Anomaly alerts raised, by rule.",
	}, []string{"rule"})
	deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: NameAlertDeliveries,
		Help: "Alert webhook deliveries by result: delivered, failed, retried (attempts after the first), dropped, skipped.",
	}, []string{"result"})
	storeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: NameStoreSeconds,
		Help: "Duration of session and event store calls, by operation (the store method).",
		// From a memory store's microseconds to a slow Redis's
		// hundreds of milliseconds.
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
	}, []string{"operation"})
)

// collectors are what Register registers.
var collectors = []prometheus.Collector{active, logins, checks, ended, storeSeconds, alertCount, deliveries}

// Register registers gatehouse's collectors into reg (a registry Caddy
// made for a config load). Registering them again into a registry that
// has them already is not an error.
func Register(reg prometheus.Registerer) error {
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) && are.ExistingCollector == c {
				continue
			}
			return fmt.Errorf("registering gatehouse metrics: %w", err)
		}
	}
	return nil
}

// children resolves the counter of each label value of vec, so that
// counting needs no label lookup; it also makes every series appear, at
// 0, from the first scrape.
func children(vec *prometheus.CounterVec, values []string) map[string]prometheus.Counter {
	m := make(map[string]prometheus.Counter, len(values))
	for _, v := range values {
		m[v] = vec.WithLabelValues(v)
	}
	return m
}

var (
	loginCounters    = children(logins, LoginResults)
	endCounters      = children(ended, EndReasons)
	alertCounters    = children(alertCount, AlertRules)
	deliveryCounters = children(deliveries, DeliveryResults)

	// The check counters are fields, not a map: a check is counted on
	// every request.
	checkValid  = checks.WithLabelValues(CheckValid)
	checkNone   = checks.WithLabelValues(CheckNone)
	checkEnded  = checks.WithLabelValues(CheckEnded)
	checkDenied = checks.WithLabelValues(CheckDenied)
	checkError  = checks.WithLabelValues(CheckError)
)

// SessionCheck counts a session check with its result (one of
// CheckResults; anything else counts as an error). It does not allocate.
func SessionCheck(result string) {
	switch result {
	case CheckValid:
		checkValid.Inc()
	case CheckNone:
		checkNone.Inc()
	case CheckEnded:
		checkEnded.Inc()
	case CheckDenied:
		checkDenied.Inc()
	default:
		checkError.Inc()
	}
}

// Event counts an event as it happens (before the activity log's flood
// limiter folds repeats into one event): a login_succeeded or
// login_failed as a login, an event that ends a session as an end, an
// anomaly as an alert of its rule. Other types are not counted.
func Event(typ, reason string) {
	switch {
	case typ == activity.LoginSucceeded:
		loginCounters[LoginSuccess].Inc()
	case typ == activity.LoginFailed:
		count(loginCounters, reason)
	case typ == activity.Anomaly:
		count(alertCounters, reason)
	default:
		if c, ok := endCounters[typ]; ok {
			c.Inc()
		}
	}
}

// Delivery counts what became of an alert (one of DeliveryResults).
func Delivery(result string) { count(deliveryCounters, result) }

func count(m map[string]prometheus.Counter, v string) {
	c, ok := m[v]
	if !ok {
		c = m[Other]
	}
	if c != nil {
		c.Inc()
	}
}
