package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "sessions",
		Usage: "[--user <user>] [--json] [--address <admin-api-address>]",
		Short: "Lists active gatehouse sessions",
		Long: `
Lists the active sessions of a running gatehouse, newest access first, by
asking Caddy's admin endpoint (/gatehouse/sessions). --user limits the list
to one user (subject); --json prints the raw items, one JSON object a line.`,
		CobraFunc: func(cmd *cobra.Command) {
			addAdminFlags(cmd)
			cmd.Flags().String("user", "", "only this user's sessions (subject)")
			cmd.Flags().Bool("json", false, "print JSON, one session a line")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdSessions)
		},
	})
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "revoke",
		Usage: "[--address <admin-api-address>] ([--] <session-id> | --user <user>)",
		Short: "Ends a gatehouse session, or every session of a user",
		Long: `
Ends one session by its id, or all sessions of a user with --user, through
Caddy's admin endpoint. The browsers must sign in again on their next
request, on every instance sharing the store.

Session ids may begin with "-" (older ones do); put such an id after --,
which ends the flags, and the flags before it:

	gatehouse revoke --address localhost:2019 -- -F9e7TbdUDEQd-h7OppmKg`,
		CobraFunc: func(cmd *cobra.Command) {
			addAdminFlags(cmd)
			cmd.Flags().String("user", "", "end every session of this user (subject)")
			cmd.SetFlagErrorFunc(revokeFlagError)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdRevoke)
		},
	})
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "events",
		Usage: "[--since <duration>] [--type <types>] [--user <user>] [--csv [--mask]] [--address <admin-api-address>]",
		Short: "Prints the gatehouse activity log",
		Long: `
Prints activity events, newest first, from Caddy's admin endpoint.
--since takes a duration such as 7d or 12h (default 7d); --type a comma list
of event types; --user a subject or email. --csv prints every matching
event as CSV (streamed from /gatehouse/events.csv; the export is recorded
as an admin_export event), and --mask with it hashes emails and cuts IP
addresses to their /24 or /48.`,
		CobraFunc: func(cmd *cobra.Command) {
			addAdminFlags(cmd)
			cmd.Flags().String("since", "7d", "how far back")
			cmd.Flags().String("type", "", "event types, comma separated")
			cmd.Flags().String("user", "", "only this user (subject or email)")
			cmd.Flags().Bool("csv", false, "print CSV: every matching event")
			cmd.Flags().Bool("mask", false, "with --csv: hash emails, cut IP addresses")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdEvents)
		},
	})
}

func addAdminFlags(cmd *cobra.Command) {
	cmd.Flags().String("address", "", "the address of Caddy's admin endpoint (default: from --config, else localhost:2019)")
	cmd.Flags().String("config", "", "config file to find the admin address in")
	cmd.Flags().String("adapter", "", "adapter of the config file")
}

// adminGet calls Caddy's admin endpoint and returns the body.
func adminCall(fl caddycmd.Flags, method, uri string) ([]byte, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
	if err != nil {
		return nil, fmt.Errorf("finding the admin endpoint: %w", err)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, http.Header{"Accept": {"application/json"}}, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

type sessionItem struct {
	ID          string    `json:"id"`
	User        string    `json:"user"`
	Email       string    `json:"email"`
	Site        string    `json:"site"`
	LastIP      string    `json:"last_ip"`
	Browser     string    `json:"browser"`
	OS          string    `json:"os"`
	City        string    `json:"city"`
	Country     string    `json:"country"`
	CreatedAt   time.Time `json:"created_at"`
	LastAccess  time.Time `json:"last_access"`
	InactiveFor int64     `json:"inactive_for"`
}

func cmdSessions(fl caddycmd.Flags) (int, error) {
	q := url.Values{"limit": {"1000"}}
	if u := fl.String("user"); u != "" {
		q.Set("user", u)
	}
	out := os.Stdout
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if !fl.Bool("json") {
		fmt.Fprintln(tw, "ID\tUSER\tEMAIL\tSITE\tDEVICE\tLOCATION\tLAST IP\tSIGNED IN\tIDLE")
	}
	for {
		body, err := adminCall(fl, http.MethodGet, "/gatehouse/sessions?"+q.Encode())
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor string            `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("decoding sessions: %w", err)
		}
		for _, raw := range page.Items {
			if fl.Bool("json") {
				fmt.Fprintln(out, string(raw))
				continue
			}
			var s sessionItem
			if err := json.Unmarshal(raw, &s); err != nil {
				return caddy.ExitCodeFailedStartup, fmt.Errorf("decoding session: %w", err)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.User, s.Email, s.Site,
				join(" on ", s.Browser, s.OS), join(", ", s.City, s.Country), s.LastIP,
				s.CreatedAt.Local().Format("2006-01-02 15:04"), time.Duration(s.InactiveFor)*time.Second)
		}
		if page.NextCursor == "" {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	_ = tw.Flush()
	return caddy.ExitCodeSuccess, nil
}

func join(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		return "-"
	}
	return strings.Join(keep, sep)
}

// revokeFlagError points to -- when a flag is unknown: most likely it is a
// session id that begins with "-".
func revokeFlagError(_ *cobra.Command, err error) error {
	return fmt.Errorf("%w (a session id that begins with - goes after --: gatehouse revoke [flags] -- <session-id>)", err)
}

func cmdRevoke(fl caddycmd.Flags) (int, error) {
	user := fl.String("user")
	args := fl.Args()
	switch {
	case user != "" && len(args) == 0:
		if _, err := adminCall(fl, http.MethodDelete, "/gatehouse/users/"+url.PathEscape(user)+"/sessions"); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		fmt.Printf("ended every session of %s\n", user)
	case user == "" && len(args) == 1:
		if _, err := adminCall(fl, http.MethodDelete, "/gatehouse/sessions/"+url.PathEscape(args[0])); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		fmt.Printf("ended session %s\n", args[0])
	default:
		return caddy.ExitCodeFailedStartup, errors.New("give one session id, or --user")
	}
	return caddy.ExitCodeSuccess, nil
}

func cmdEvents(fl caddycmd.Flags) (int, error) {
	since, err := caddy.ParseDuration(fl.String("since"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("--since: %w", err)
	}
	q := url.Values{"from": {time.Now().Add(-since).UTC().Format(time.RFC3339)}}
	if t := fl.String("type"); t != "" {
		q.Set("type", t)
	}
	if u := fl.String("user"); u != "" {
		q.Set("user", u)
	}
	if fl.Bool("csv") {
		if fl.Bool("mask") {
			q.Set("mask", "true")
		}
		if err := adminStream(fl, "/gatehouse/events.csv?"+q.Encode(), os.Stdout); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		return caddy.ExitCodeSuccess, nil
	}
	if fl.Bool("mask") {
		return caddy.ExitCodeFailedStartup, errors.New("--mask goes with --csv")
	}
	q.Set("limit", "1000")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTYPE\tUSER\tEMAIL\tIP\tLOCATION\tREASON\tACTOR")
	for {
		body, err := adminCall(fl, http.MethodGet, "/gatehouse/events?"+q.Encode())
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		var page struct {
			Items []struct {
				Time    time.Time `json:"time"`
				Type    string    `json:"type"`
				User    string    `json:"user"`
				Email   string    `json:"email"`
				IP      string    `json:"ip"`
				City    string    `json:"city"`
				Country string    `json:"country"`
				Reason  string    `json:"reason"`
				Actor   string    `json:"actor"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("decoding events: %w", err)
		}
		for _, e := range page.Items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"),
				e.Type, e.User, e.Email, e.IP, join(", ", e.City, e.Country), e.Reason, e.Actor)
		}
		if page.NextCursor == "" {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	_ = tw.Flush()
	return caddy.ExitCodeSuccess, nil
}
