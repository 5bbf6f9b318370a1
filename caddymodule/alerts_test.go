package caddymodule

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-proxy/gatehouse/internal/alerts"
)

func TestAlertRules(t *testing.T) {
	tests := []struct {
		name string
		in   *AlertRules
		want alerts.Rules
	}{
		{"absent block: SPEC's defaults", nil, alerts.Defaults()},
		{"empty block: defaults", &AlertRules{}, alerts.Defaults()},
		{"all off", &AlertRules{NewCountry: "off", NewDevice: "off", ImpossibleTravel: "off", SharedIP: "off", FailureBurst: "off"}, alerts.Rules{}},
		{"thresholds", &AlertRules{ImpossibleTravel: "1200", SharedIP: "5 30m", FailureBurst: "10 1h"}, alerts.Rules{
			NewCountry: true, NewDevice: true, TravelKmh: 1200,
			SharedIPUsers: 5, SharedIPWindow: 30 * time.Minute, FailureBurst: 10, FailureWindow: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.rules()
			if err != nil || got != tt.want {
				t.Errorf("rules() = %+v, %v, want %+v", got, err, tt.want)
			}
		})
	}
}

func TestAdaptAlertErrors(t *testing.T) {
	site := "app.example.com {\n\tgatehouse {\n\t\tissuer https://idp.example.com\n\t\tclient_id x\n\t}\n}\n"
	global := func(body string) string { return "{\n\tgatehouse {\n" + body + "\t}\n}\n" + site }
	block := func(body string) string { return global("\t\talerts {\n" + body + "\t\t}\n") }
	tests := []struct {
		name, src, want string
		line            int
	}{
		{"unknown rule", block("\t\t\tnew_city on\n"), `unrecognized alerts subdirective "new_city"`, 4},
		{"duplicate rule", block("\t\t\tnew_device on\n\t\t\tnew_device off\n"), `duplicate alerts subdirective "new_device"`, 5},
		{"switch not on/off", block("\t\t\tnew_country yes\n"), `new_country: want on or off, got "yes"`, 4},
		{"switch bare", block("\t\t\tnew_device\n"), "wrong argument count", 4},
		{"speed not a number", block("\t\t\timpossible_travel fast\n"), `impossible_travel: want a speed in km/h`, 4},
		{"speed zero", block("\t\t\timpossible_travel 0\n"), `impossible_travel: want a speed in km/h`, 4},
		{"shared_ip without window", block("\t\t\tshared_ip 3\n"), "shared_ip: want a count and a window", 4},
		{"shared_ip of one user", block("\t\t\tshared_ip 1 1h\n"), `shared_ip: want a count of at least 2, got "1"`, 4},
		{"failure_burst bad window", block("\t\t\tfailure_burst 5 soon\n"), `failure_burst: want a positive window such as 1h, got "soon"`, 4},
		{"failure_burst negative window", block("\t\t\tfailure_burst 5 -1m\n"), "failure_burst: want a positive window", 4},
		{"argument after alerts", global("\t\talerts on {\n\t\t}\n"), "wrong argument count", 3},
		{"duplicate alerts", global("\t\talerts {\n\t\t}\n\t\talerts {\n\t\t}\n"), `duplicate subdirective "alerts"`, 5},
		{"webhook not a URL", global("\t\talert_webhook hooks.example.com\n"), "alert_webhook: want an http:// or https:// URL", 3},
		{"webhook other scheme", global("\t\talert_webhook ftp://hooks.example.com/x\n"), "alert_webhook: want an http:// or https:// URL", 3},
		{"webhook bare", global("\t\talert_webhook\n"), "wrong argument count", 3},
		{"unknown alert_on type", global("\t\talert_webhook https://h.example.com/x\n\t\talert_on admin_export login\n"), `alert_on: unknown event type "login"`, 4},
		{"alert_on bare", global("\t\talert_on\n"), "wrong argument count", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, tt.src)
			if err == nil {
				t.Fatalf("adapt succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if at := fmt.Sprintf("at Caddyfile:%d", tt.line); !strings.HasSuffix(err.Error(), at) {
				t.Errorf("error = %q, want it to name the line: %q", err, at)
			}
		})
	}
}

// JSON configs skip the Caddyfile's checks; Provision makes the same ones.
func TestAlertConfigJSON(t *testing.T) {
	tests := []struct {
		name string
		app  App
		want string
	}{
		{"ok", App{AlertWebhook: "https://h.example.com/x", AlertOn: []string{"session_revoked"}, Alerts: &AlertRules{SharedIP: "4 2h"}}, ""},
		{"bad rule", App{Alerts: &AlertRules{FailureBurst: "many"}}, "gatehouse: alerts: failure_burst:"},
		{"unknown type", App{AlertWebhook: "https://h.example.com/x", AlertOn: []string{"signin"}}, `alert_on: unknown event type "signin"`},
		{"alert_on without webhook", App{AlertOn: []string{"logout"}}, "alert_on needs alert_webhook"},
		{"bad webhook", App{AlertWebhook: "mailto:ops@example.com"}, "alert_webhook: want an http:// or https:// URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.app.alertConfig(caddy.NewReplacer())
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("alertConfig() = %v, want %q", err, tt.want)
			}
		})
	}
}
