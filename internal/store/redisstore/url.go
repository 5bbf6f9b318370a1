package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Default ports when an address has none.
const (
	defaultPort         = "6379"
	defaultSentinelPort = "26379"
)

// ParseURL turns a store URL into client options. It does no network I/O,
// so configuration validation can call it. Accepted forms:
//
//	redis://[user:pass@]host[:port][/db]                 one server
//	rediss://...                                         the same over TLS
//	redis-sentinel://[user:pass@]h1[:port],h2/master[/db] Sentinel (rediss-sentinel:// for TLS)
//	redis-cluster://[user:pass@]h1[:port],h2[:port]      Cluster (rediss-cluster:// for TLS)
//	redis://h1:port,h2:port  or  redis://h1:port,redis://h2:port   Cluster too
//
// Credentials in a Sentinel URL are those of the data nodes; the query
// parameters sentinel_username and sentinel_password give the Sentinels'
// own. Other query parameters: dial_timeout, read_timeout, write_timeout
// (Go durations), pool_size, max_retries, client_name. Unknown parameters
// are errors, so typos do not pass silently.
//
// Defaults differ from go-redis's to fail fast when Redis is down: a
// request then gets its 503 (or a cached session) in milliseconds instead
// of waiting through rounds of redials. Default: dial_timeout 2s, one dial
// attempt per connection, max_retries 0: go-redis sends a command whose
// reply timed out again while the first copy still runs once Redis
// answers, so after a stall a claim (SET NX) found itself taken, an end
// found no session, an event was written twice; and the pool drops
// connections that Redis closed before handing them out, so a restart
// needs no retry.
func ParseURL(s string) (*redis.UniversalOptions, error) {
	if s == "" {
		return nil, errors.New("parsing redis url: empty")
	}
	// Several complete URLs separated by commas name the nodes of a
	// cluster; they must agree on everything but the address.
	if parts := strings.Split(s, ","); len(parts) > 1 && strings.Contains(parts[1], "://") {
		var opts *redis.UniversalOptions
		for _, p := range parts {
			o, err := parseOne(strings.TrimSpace(p))
			if err != nil {
				return nil, err
			}
			if len(o.Addrs) != 1 || o.MasterName != "" {
				return nil, fmt.Errorf("parsing redis url %q: a comma-separated list must hold one redis:// or rediss:// address per item", redact(s))
			}
			if opts == nil {
				opts = o
				continue
			}
			if o.Username != opts.Username || o.Password != opts.Password || (o.TLSConfig == nil) != (opts.TLSConfig == nil) || o.DB != opts.DB {
				return nil, fmt.Errorf("parsing redis url %q: cluster nodes differ in scheme, credentials or database", redact(s))
			}
			opts.Addrs = append(opts.Addrs, o.Addrs[0])
		}
		if opts.DB != 0 {
			return nil, fmt.Errorf("parsing redis url %q: redis cluster has only database 0", redact(s))
		}
		opts.IsClusterMode = true
		return opts, nil
	}
	return parseOne(s)
}

// Defaults ParseURL applies; see its comment.
const (
	defaultDialTimeout = 2 * time.Second
	defaultMaxRetries  = -1 // go-redis's "none"; see ParseURL
)

func parseOne(s string) (*redis.UniversalOptions, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil, fmt.Errorf("parsing redis url %q: missing scheme (redis://, rediss://, redis-sentinel:// or redis-cluster://)", redact(s))
	}
	kind, useTLS := "", false
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		useTLS = true
	case "redis-sentinel":
		kind = "sentinel"
	case "rediss-sentinel":
		kind, useTLS = "sentinel", true
	case "redis-cluster":
		kind = "cluster"
	case "rediss-cluster":
		kind, useTLS = "cluster", true
	default:
		return nil, fmt.Errorf("parsing redis url %q: unknown scheme %q", redact(s), scheme)
	}

	// url.Parse does not accept a comma-separated host list, so split the
	// authority by hand and let url handle the escapes.
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	opts := &redis.UniversalOptions{}
	hosts := authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo := authority[:at]
		hosts = authority[at+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		var err error
		if opts.Username, err = url.PathUnescape(user); err != nil {
			return nil, fmt.Errorf("parsing redis url %q: user name: %w", redact(s), err)
		}
		if hasPass {
			if opts.Password, err = url.PathUnescape(pass); err != nil {
				return nil, fmt.Errorf("parsing redis url %q: password: %w", redact(s), err)
			}
		}
	}
	port := defaultPort
	if kind == "sentinel" {
		port = defaultSentinelPort
	}
	for _, h := range strings.Split(hosts, ",") {
		addr, err := hostPort(h, port)
		if err != nil {
			return nil, fmt.Errorf("parsing redis url %q: %w", redact(s), err)
		}
		opts.Addrs = append(opts.Addrs, addr)
	}

	segs := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	if kind == "sentinel" {
		if len(segs) == 0 {
			return nil, fmt.Errorf("parsing redis url %q: sentinel url needs a master name as its path", redact(s))
		}
		opts.MasterName, segs = segs[0], segs[1:]
	}
	switch len(segs) {
	case 0:
	case 1:
		db, err := strconv.Atoi(segs[0])
		if err != nil || db < 0 {
			return nil, fmt.Errorf("parsing redis url %q: database %q is not a number", redact(s), segs[0])
		}
		opts.DB = db
	default:
		return nil, fmt.Errorf("parsing redis url %q: path %q has too many parts", redact(s), path)
	}
	switch {
	case kind == "cluster" && opts.DB != 0:
		return nil, fmt.Errorf("parsing redis url %q: redis cluster has only database 0", redact(s))
	case kind == "cluster":
		opts.IsClusterMode = true
	case kind == "" && len(opts.Addrs) > 1:
		if opts.DB != 0 {
			return nil, fmt.Errorf("parsing redis url %q: several addresses mean a cluster, which has only database 0", redact(s))
		}
		opts.IsClusterMode = true
	}

	if useTLS {
		host, _, _ := net.SplitHostPort(opts.Addrs[0])
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		// With several nodes, crypto/tls takes the name from each
		// address it dials; one fixed name would be wrong for all but one.
		if len(opts.Addrs) == 1 {
			opts.TLSConfig.ServerName = host
		}
	}
	opts.DialTimeout = defaultDialTimeout
	opts.DialerRetries = 1
	opts.MaxRetries = defaultMaxRetries
	if err := applyQuery(opts, rawQuery); err != nil {
		return nil, fmt.Errorf("parsing redis url %q: %w", redact(s), err)
	}
	return opts, nil
}

func hostPort(h, defPort string) (string, error) {
	if h == "" {
		return "", errors.New("empty host")
	}
	host, port := h, defPort
	// A bare IPv6 address must be bracketed to carry a port; without
	// brackets, take the whole thing as the host.
	if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
		var err error
		if !strings.HasSuffix(h, "]") {
			if host, port, err = net.SplitHostPort(h); err != nil {
				return "", fmt.Errorf("address %q: %w", h, err)
			}
		} else {
			host = strings.Trim(h, "[]")
		}
	}
	if host == "" {
		return "", fmt.Errorf("address %q has no host", h)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("address %q: bad port %q", h, port)
	}
	return net.JoinHostPort(host, port), nil
}

func applyQuery(opts *redis.UniversalOptions, raw string) error {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "dial_timeout", "read_timeout", "write_timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			switch k {
			case "dial_timeout":
				opts.DialTimeout = d
			case "read_timeout":
				opts.ReadTimeout = d
			default:
				opts.WriteTimeout = d
			}
		case "pool_size":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("pool_size %q is not a positive number", v)
			}
			opts.PoolSize = n
		case "max_retries":
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("max_retries %q is not a number", v)
			}
			// go-redis reads 0 as "the default (3)" and -1 as "none".
			if n == 0 {
				n = -1
			}
			opts.MaxRetries = n
		case "client_name":
			opts.ClientName = v
		case "sentinel_username", "sentinel_password":
			if opts.MasterName == "" {
				return fmt.Errorf("%s applies to redis-sentinel:// urls only", k)
			}
			if k == "sentinel_username" {
				opts.SentinelUsername = v
			} else {
				opts.SentinelPassword = v
			}
		default:
			return fmt.Errorf("unknown parameter %q", k)
		}
	}
	return nil
}

// redact hides the passwords of a URL (or a comma-separated list of URLs)
// in error messages, which end up in logs.
func redact(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		scheme, rest, ok := strings.Cut(p, "://")
		if !ok {
			continue
		}
		end := len(rest)
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			end = j
		}
		at := strings.LastIndex(rest[:end], "@")
		if at < 0 {
			continue
		}
		if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
			parts[i] = scheme + "://" + user + ":xxxxx" + rest[at:]
		}
	}
	return strings.Join(parts, ",")
}
