package caddymodule

import (
	"fmt"
	"io"
	"net/http"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// adminStream copies the body of a GET on Caddy's admin endpoint to out
// as it arrives: an export may be millions of rows, which adminCall would
// hold in memory.
func adminStream(fl caddycmd.Flags, uri string, out io.Writer) error {
	addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
	if err != nil {
		return fmt.Errorf("finding the admin endpoint: %w", err)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, http.MethodGet, uri, http.Header{"Accept": {"text/csv"}}, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(out, resp.Body); err != nil {
		// A connection broken by the server means the export is
		// incomplete (admin.eventsCSV aborts on a store error).
		return fmt.Errorf("export interrupted, output incomplete: %w", err)
	}
	return nil
}
