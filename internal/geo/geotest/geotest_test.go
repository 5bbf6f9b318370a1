package geotest_test

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/gatehouse-proxy/gatehouse/internal/geo/geotest"
)

// The records must have GeoLite2-City's shape, or code tested against them
// would fail on the real database.
func TestWriteCityShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "City.mmdb")
	geotest.WriteCity(t, path, []geotest.Entry{
		geotest.London,
		{Network: "10.0.0.0/8", Country: "NL"},
		{Network: "::1/128", City: "Loop"},
	})
	db, err := maxminddb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Metadata.DatabaseType != "GeoLite2-City" {
		t.Errorf("DatabaseType = %q, want GeoLite2-City", db.Metadata.DatabaseType)
	}
	tests := []struct {
		ip   string
		want map[string]any
	}{
		{"81.2.69.142", map[string]any{
			"city":         map[string]any{"names": map[string]any{"en": "London"}},
			"subdivisions": []any{map[string]any{"names": map[string]any{"en": "England"}}},
			"country":      map[string]any{"iso_code": "GB"},
			"location":     map[string]any{"latitude": 51.5142, "longitude": -0.0931},
		}},
		{"10.9.8.7", map[string]any{"country": map[string]any{"iso_code": "NL"}}},
		{"::1", map[string]any{"city": map[string]any{"names": map[string]any{"en": "Loop"}}}},
		{"8.8.8.8", nil},
	}
	for _, tt := range tests {
		var got map[string]any
		if err := db.Lookup(netip.MustParseAddr(tt.ip)).Decode(&got); err != nil {
			t.Fatalf("Lookup(%s): %v", tt.ip, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("record for %s = %#v, want %#v", tt.ip, got, tt.want)
		}
	}
}

func TestCityBadNetwork(t *testing.T) {
	if _, err := geotest.City([]geotest.Entry{{Network: "81.2.69.142"}}); err == nil {
		t.Error("City with a network that is not a CIDR: nil error")
	}
}
