package redisstore

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url  string
		want redis.UniversalOptions
		tls  string // expected TLS server name; "-" for no TLS config
	}{
		{"redis://127.0.0.1:6379/0", redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}}, "-"},
		{"redis://localhost", redis.UniversalOptions{Addrs: []string{"localhost:6379"}}, "-"},
		{"redis://user:p%40ss@cache.internal:6380/3", redis.UniversalOptions{Addrs: []string{"cache.internal:6380"}, Username: "user", Password: "p@ss", DB: 3}, "-"},
		{"redis://:secret@h:1/", redis.UniversalOptions{Addrs: []string{"h:1"}, Password: "secret"}, "-"},
		{"redis://[::1]:6390/2", redis.UniversalOptions{Addrs: []string{"[::1]:6390"}, DB: 2}, "-"},
		{"redis://[::1]", redis.UniversalOptions{Addrs: []string{"[::1]:6379"}}, "-"},
		{"rediss://cache.example.com:6380", redis.UniversalOptions{Addrs: []string{"cache.example.com:6380"}}, "cache.example.com"},
		{"REDIS://h:7", redis.UniversalOptions{Addrs: []string{"h:7"}}, "-"},
		{"redis://h?dial_timeout=2s&read_timeout=500ms&write_timeout=1s&pool_size=20&client_name=gh",
			redis.UniversalOptions{Addrs: []string{"h:6379"}, DialTimeout: 2 * time.Second, ReadTimeout: 500 * time.Millisecond, WriteTimeout: time.Second, PoolSize: 20, ClientName: "gh"}, "-"},
		{"redis://h?max_retries=0", redis.UniversalOptions{Addrs: []string{"h:6379"}, MaxRetries: -1}, "-"},
		{"redis://h?max_retries=4", redis.UniversalOptions{Addrs: []string{"h:6379"}, MaxRetries: 4}, "-"},
		{"redis-sentinel://:pw@s1:26380,s2/mymaster/1",
			redis.UniversalOptions{Addrs: []string{"s1:26380", "s2:26379"}, MasterName: "mymaster", Password: "pw", DB: 1}, "-"},
		{"redis-sentinel://s1/mymaster?sentinel_password=sp&sentinel_username=su",
			redis.UniversalOptions{Addrs: []string{"s1:26379"}, MasterName: "mymaster", SentinelPassword: "sp", SentinelUsername: "su"}, "-"},
		{"rediss-sentinel://s1,s2/m", redis.UniversalOptions{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "m"}, ""},
		{"redis-cluster://n1:7000,n2:7001,n3", redis.UniversalOptions{Addrs: []string{"n1:7000", "n2:7001", "n3:6379"}, IsClusterMode: true}, "-"},
		{"redis-cluster://n1:7000", redis.UniversalOptions{Addrs: []string{"n1:7000"}, IsClusterMode: true}, "-"},
		{"rediss-cluster://u:p@n1:7000,n2:7001", redis.UniversalOptions{Addrs: []string{"n1:7000", "n2:7001"}, Username: "u", Password: "p", IsClusterMode: true}, ""},
		{"redis://n1:7000,n2:7001", redis.UniversalOptions{Addrs: []string{"n1:7000", "n2:7001"}, IsClusterMode: true}, "-"},
		{"redis://:pw@n1:7000,redis://:pw@n2:7001", redis.UniversalOptions{Addrs: []string{"n1:7000", "n2:7001"}, Password: "pw", IsClusterMode: true}, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := ParseURL(tt.url)
			if err != nil {
				t.Fatalf("ParseURL(%q) error = %v", tt.url, err)
			}
			tlsc := got.TLSConfig
			got.TLSConfig = nil
			want := tt.want
			if want.DialTimeout == 0 {
				want.DialTimeout = defaultDialTimeout
			}
			if want.MaxRetries == 0 {
				want.MaxRetries = defaultMaxRetries
			}
			want.DialerRetries = 1
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("ParseURL(%q) =\n  %+v\nwant\n  %+v", tt.url, *got, want)
			}
			switch {
			case tt.tls == "-" && tlsc != nil:
				t.Errorf("ParseURL(%q) has a TLS config, want none", tt.url)
			case tt.tls != "-" && tlsc == nil:
				t.Errorf("ParseURL(%q) has no TLS config", tt.url)
			case tt.tls != "-" && tlsc.ServerName != tt.tls:
				t.Errorf("ParseURL(%q) TLS server name = %q, want %q", tt.url, tlsc.ServerName, tt.tls)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"", "empty"},
		{"127.0.0.1:6379", "missing scheme"},
		{"http://h", `unknown scheme "http"`},
		{"redis://h/abc", `database "abc" is not a number`},
		{"redis://h/1/2", "too many parts"},
		{"redis://h:notaport", "bad port"},
		{"redis://h:70000", "bad port"},
		{"redis://:pw@", "empty host"},
		{"redis://h,", "empty host"},
		{"redis-sentinel://s1,s2", "master name"},
		{"redis-cluster://n1,n2/1", "only database 0"},
		{"redis://n1,n2/3", "only database 0"},
		{"redis://h?timeout=1s", `unknown parameter "timeout"`},
		{"redis://h?dial_timeout=soon", "dial_timeout"},
		{"redis://h?pool_size=0", "pool_size"},
		{"redis://h?max_retries=x", "max_retries"},
		{"redis://h?sentinel_password=x", "redis-sentinel"},
		{"redis://:a@n1,redis://:b@n2", "differ"},
		{"redis://n1,redis-sentinel://s/m", "one redis:// or rediss:// address"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := ParseURL(tt.url)
			if err == nil {
				t.Fatalf("ParseURL(%q) succeeded, want an error containing %q", tt.url, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseURL(%q) error = %q, want it to contain %q", tt.url, err, tt.want)
			}
			if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] {
				t.Errorf("error %q does not start in lower case", msg)
			}
		})
	}
}

func TestParseURLRedactsPasswords(t *testing.T) {
	for _, u := range []string{
		"redis://user:hunter2@h/x",
		"redis://:hunter2@n1,redis://:hunter2@n2/3",
		"redis-sentinel://:hunter2@s1/m/x",
	} {
		_, err := ParseURL(u)
		if err == nil {
			t.Fatalf("ParseURL(%q) succeeded, want an error", u)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseURL(%q) error %q reveals the password", u, err)
		}
	}
}
