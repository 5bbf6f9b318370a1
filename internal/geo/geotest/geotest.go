// Package geotest writes small MaxMind-format City databases for tests, so
// that no test depends on a downloaded GeoLite2 file. Records are shaped like
// GeoLite2-City (city.names.en, subdivisions[0].names.en, country.iso_code,
// location.latitude/longitude), which is what geo.DB reads.
package geotest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Entry is one network and where it is. Empty strings and zero coordinates
// leave the matching field out of the record, as GeoLite2 does for
// networks it knows little about.
type Entry struct {
	// Network is a CIDR such as "81.2.69.0/24" or "2001:db8::/32".
	Network   string
	City      string
	Region    string
	Country   string
	Latitude  float64
	Longitude float64
}

// London is a ready-made entry for the address MaxMind's own test data uses
// for London (81.2.69.142).
var London = Entry{
	Network:   "81.2.69.0/24",
	City:      "London",
	Region:    "England",
	Country:   "GB",
	Latitude:  51.5142,
	Longitude: -0.0931,
}

// WriteCity writes a City database holding entries to path, failing the
// test on any error. Reserved ranges (loopback, RFC 1918, documentation
// prefixes) are allowed so that tests running on 127.0.0.1 can be given a
// location.
func WriteCity(t testing.TB, path string, entries []Entry) {
	t.Helper()
	b, err := City(entries)
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatalf("geotest: writing %s: %v", path, err)
	}
}

// City returns the bytes of a City database holding entries. Later entries
// replace earlier ones where networks overlap.
func City(entries []Entry) ([]byte, error) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: "GeoLite2-City",
		Description:  map[string]string{"en": "gatehouse test City database"},
		Languages:    []string{"en"},
		// Without this mmdbwriter refuses loopback and private networks.
		IncludeReservedNetworks: true,
		// A fixed epoch keeps the output byte-for-byte reproducible.
		BuildEpoch: 1700000000,
	})
	if err != nil {
		return nil, fmt.Errorf("creating tree: %w", err)
	}
	for _, e := range entries {
		_, network, err := net.ParseCIDR(e.Network)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", e.Network, err)
		}
		if err := tree.Insert(network, record(e)); err != nil {
			return nil, fmt.Errorf("inserting %s: %w", e.Network, err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("writing database: %w", err)
	}
	return buf.Bytes(), nil
}

func record(e Entry) mmdbtype.Map {
	names := func(s string) mmdbtype.Map {
		return mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(s)}}
	}
	m := mmdbtype.Map{}
	if e.City != "" {
		m["city"] = names(e.City)
	}
	if e.Region != "" {
		m["subdivisions"] = mmdbtype.Slice{names(e.Region)}
	}
	if e.Country != "" {
		m["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(e.Country)}
	}
	if e.Latitude != 0 || e.Longitude != 0 {
		m["location"] = mmdbtype.Map{
			"latitude":  mmdbtype.Float64(e.Latitude),
			"longitude": mmdbtype.Float64(e.Longitude),
		}
	}
	return m
}
