package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "history",
		Usage: "[--user <user>] [--since <duration>] [--json | --csv [--mask]] [--address <admin-api-address>]",
		Short: "Prints the gatehouse login history",
		Long: `
Prints the login history, one row per session, current and ended, newest
sign-in first, from Caddy's admin endpoint (/gatehouse/history). --since
takes a duration such as 30d or 12h (default 30d) and bounds the sign-in
time; --user a subject or verified email; --json prints the raw rows, one
JSON object a line, with the fields of /api/history. --csv prints every
matching row as CSV (/gatehouse/history.csv, recorded as an admin_export
event), and --mask with it hashes users and emails and cuts IP addresses.`,
		CobraFunc: func(cmd *cobra.Command) {
			addAdminFlags(cmd)
			cmd.Flags().String("since", "30d", "how far back (sign-in time)")
			cmd.Flags().String("user", "", "only this user (subject or email)")
			cmd.Flags().Bool("json", false, "print JSON, one row a line")
			cmd.Flags().Bool("csv", false, "print CSV: every matching row")
			cmd.Flags().Bool("mask", false, "with --csv: hash users and emails, cut IP addresses")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdHistory)
		},
	})
}

func cmdHistory(fl caddycmd.Flags) (int, error) {
	since, err := caddy.ParseDuration(fl.String("since"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("--since: %w", err)
	}
	if fl.Bool("csv") {
		if fl.Bool("json") {
			return caddy.ExitCodeFailedStartup, errors.New("--csv and --json exclude each other")
		}
		q := url.Values{"from": {time.Now().Add(-since).UTC().Format(time.RFC3339)}}
		if u := fl.String("user"); u != "" {
			q.Set("user", u)
		}
		if fl.Bool("mask") {
			q.Set("mask", "true")
		}
		if err := adminStream(fl, "/gatehouse/history.csv?"+q.Encode(), os.Stdout); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		return caddy.ExitCodeSuccess, nil
	}
	if fl.Bool("mask") {
		return caddy.ExitCodeFailedStartup, errors.New("--mask goes with --csv")
	}
	get := func(uri string) ([]byte, error) { return adminCall(fl, http.MethodGet, uri) }
	if err := printHistory(os.Stdout, get, fl.String("user"), time.Now().Add(-since), fl.Bool("json")); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	return caddy.ExitCodeSuccess, nil
}

// historyRow is what the table shows of a /gatehouse/history item.
type historyRow struct {
	SessionID  string `json:"session_id"`
	User       string `json:"user"`
	Email      string `json:"email"`
	Site       string `json:"site"`
	IP         string `json:"ip"`
	City       string `json:"city"`
	Country    string `json:"country"`
	Device     string `json:"device"`
	MFA        bool   `json:"mfa"`
	LoginTime  string `json:"login_time"`
	EndTime    string `json:"end_time"`
	Duration   int64  `json:"duration"`
	Inactivity int64  `json:"inactivity_duration"`
	Status     string `json:"status"`
}

// historyHeader is the table's header; scripts should use --json.
const historyHeader = "SIGNED IN\tSIGNED OUT\tSTATUS\tUSER\tEMAIL\tSITE\tIP\tLOCATION\tDEVICE\tMFA\tDURATION\tIDLE"

// printHistory pages through /gatehouse/history (get fetches a URI of
// the admin endpoint) and writes a table, or the raw rows with asJSON.
func printHistory(w io.Writer, get func(uri string) ([]byte, error), user string, from time.Time, asJSON bool) error {
	q := url.Values{"from": {from.UTC().Format(time.RFC3339)}, "limit": {"1000"}}
	if user != "" {
		q.Set("user", user)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, historyHeader)
	}
	for {
		body, err := get("/gatehouse/history?" + q.Encode())
		if err != nil {
			return err
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor string            `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("decoding login history: %w", err)
		}
		for _, raw := range page.Items {
			if asJSON {
				// One row a line, whatever the spacing.
				var line bytes.Buffer
				if err := json.Compact(&line, raw); err != nil {
					return fmt.Errorf("decoding login history row: %w", err)
				}
				fmt.Fprintln(w, line.String())
				continue
			}
			var r historyRow
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("decoding login history row: %w", err)
			}
			mfa := "no"
			if r.MFA {
				mfa = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				localTime(r.LoginTime), localTime(r.EndTime), r.Status, r.User, join("", r.Email), r.Site,
				join("", r.IP), join(", ", r.City, r.Country), join("", r.Device), mfa,
				time.Duration(r.Duration)*time.Second, time.Duration(r.Inactivity)*time.Second)
		}
		if page.NextCursor == "" {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	return tw.Flush()
}

// localTime shows an RFC 3339 time in the local zone, "-" for none.
func localTime(v string) string {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}
