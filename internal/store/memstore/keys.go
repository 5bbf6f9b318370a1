package memstore

import (
	"context"
	"sync"
)

// signingKeys keeps jwt_header's signing key records (see
// gateway.KeyStore), opaque and sealed by the gateway. They have their own
// lock: key checks never wait on the session map.
type signingKeys struct {
	mu   sync.Mutex
	recs map[string][]byte
}

// SigningKeys returns a copy of every stored record by id.
func (s *Store) SigningKeys(context.Context) (map[string][]byte, error) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	out := make(map[string][]byte, len(s.keys.recs))
	for id, rec := range s.keys.recs {
		out[id] = append([]byte(nil), rec...)
	}
	return out, nil
}

// AddSigningKey stores rec under id unless id is taken, and reports
// whether it did.
func (s *Store) AddSigningKey(_ context.Context, id string, rec []byte) (bool, error) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if _, ok := s.keys.recs[id]; ok {
		return false, nil
	}
	if s.keys.recs == nil {
		s.keys.recs = make(map[string][]byte)
	}
	s.keys.recs[id] = append([]byte(nil), rec...)
	return true, nil
}

// RemoveSigningKey deletes the record id, if any.
func (s *Store) RemoveSigningKey(_ context.Context, id string) error {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	delete(s.keys.recs, id)
	return nil
}
