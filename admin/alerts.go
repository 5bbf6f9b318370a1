package admin

import (
	"fmt"
	"net/http"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

// alertRow is an anomaly as the Alerts tab shows it: the rule, who, from
// where, the evidence, and where to look further.
type alertRow struct {
	eventRow
	// Rule is the anomaly's reason in words.
	Rule string
	// UserURL opens the user's login history.
	UserURL string
}

type adminAlertsData struct {
	User     string
	Rows     []alertRow
	NextURL  string
	FirstURL string
}

// ruleLabel names an anomaly rule for people.
func ruleLabel(reason string) string {
	switch reason {
	case "new_country":
		return "New country"
	case "new_device":
		return "New device"
	case "impossible_travel":
		return "Impossible travel"
	case "shared_ip":
		return "Shared IP address"
	case "failure_burst":
		return "Burst of failed sign-ins"
	}
	return reasonLabel(reason)
}

// adminAlerts is the Alerts tab: anomaly events, newest first, with their
// evidence (the event's detail), within the viewer's reach.
func (p *pages) adminAlerts(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string) {
	vw := p.newView(r, v, prefix, "Alerts")
	vw.Nav, vw.Tab = "admin", "alerts"
	qv := r.URL.Query()
	d := &adminAlertsData{User: qv.Get("user")}
	vw.Data = d
	f, err := eventFilter(qv)
	if err != nil {
		vw.Error = err.Error()
		p.render(w, r, http.StatusBadRequest, "alerts", vw)
		return
	}
	f.Types = []string{activity.Anomaly}
	if qv.Get("limit") == "" {
		f.Limit = adminPageSize
	}
	page, err := eventsInReach(r.Context(), p.b, callerFor(v), f)
	if err != nil {
		p.failErr(w, r, v, prefix, fmt.Errorf("querying alerts: %w", err))
		return
	}
	for _, row := range eventRows(page.Items, p.b.Now()) {
		a := alertRow{eventRow: row, Rule: ruleLabel(row.Event.Reason)}
		if who := row.Event.User; who != "" {
			a.UserURL = historyURL(prefix, who)
		}
		d.Rows = append(d.Rows, a)
	}
	d.NextURL, d.FirstURL = pageLinks(r.URL, page.Next)
	p.render(w, r, http.StatusOK, "alerts", vw)
}
