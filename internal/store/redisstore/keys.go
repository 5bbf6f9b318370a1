package redisstore

import (
	"context"
)

// signingKeysKey is the hash of jwt_header's signing key records, id →
// record (see doc.go). The records are opaque here: the gateway seals the
// private keys under the app secret before they reach Redis.
func (s *Store) signingKeysKey() string { return s.tag + ":jwk" }

// SigningKeys returns every stored record by id.
func (s *Store) SigningKeys(ctx context.Context) (map[string][]byte, error) {
	m, err := s.c.HGetAll(ctx, s.signingKeysKey()).Result()
	if err != nil {
		return nil, fail("loading signing keys", err)
	}
	out := make(map[string][]byte, len(m))
	for id, rec := range m {
		out[id] = []byte(rec)
	}
	return out, nil
}

// AddSigningKey stores rec under id unless id is taken (HSETNX), and
// reports whether it did: of instances racing, exactly one wins.
func (s *Store) AddSigningKey(ctx context.Context, id string, rec []byte) (bool, error) {
	ok, err := s.c.HSetNX(ctx, s.signingKeysKey(), id, rec).Result()
	if err != nil {
		return false, fail("storing signing key", err)
	}
	return ok, nil
}

// RemoveSigningKey deletes the record id, if any.
func (s *Store) RemoveSigningKey(ctx context.Context, id string) error {
	if err := s.c.HDel(ctx, s.signingKeysKey(), id).Err(); err != nil {
		return fail("removing signing key", err)
	}
	return nil
}
