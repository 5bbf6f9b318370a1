package geo_test

import (
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/gatehouse-proxy/gatehouse/internal/geo"
	"github.com/gatehouse-proxy/gatehouse/internal/geo/geotest"
)

func ExampleDB_Lookup() {
	dir, _ := os.MkdirTemp("", "geo")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "GeoLite2-City.mmdb")
	b, _ := geotest.City([]geotest.Entry{geotest.London})
	os.WriteFile(path, b, 0o644)

	db, err := geo.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	loc := db.Lookup(netip.MustParseAddr("81.2.69.142"))
	fmt.Println(loc.City, loc.Region, loc.Country)

	var none *geo.DB // no geoip configured
	fmt.Printf("%q\n", none.Lookup(netip.MustParseAddr("81.2.69.142")).Country)
	// Output:
	// London England GB
	// ""
}

func ExampleParseUserAgent() {
	d := geo.ParseUserAgent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1")
	fmt.Println(d.Browser, d.OS, d.Device)
	d = geo.ParseUserAgent("curl/8.5.0")
	fmt.Println(d.Browser, d.Device)
	// Output:
	// Safari iOS mobile
	// curl bot
}

func ExampleValidCountry() {
	fmt.Println(geo.ValidCountry("NL"), geo.ValidCountry("kp"), geo.ValidCountry("UK"))
	// Output: true true false
}
