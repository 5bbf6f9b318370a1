package oidcflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/coreos/go-oidc/v3/oidc"
)

// keySet is the provider's key set (jwks_uri), telling a key fetch that
// failed from a token that no key verifies. go-oidc's verifier reports
// both as one error (it formats the key set's error with %v), but they
// call for different answers: a bad token is refused for good (400),
// while keys that could not be fetched, after the provider rotated them
// or while it is down, are the provider's fault, a 503 that a
// back-channel logout sender retries (Back-Channel Logout 1.0, 2.8) and
// a user may retry. The verifier hands VerifySignature the context of
// Verify, so the failure is noted there for verifyToken to read.
type keySet struct {
	remote *oidc.RemoteKeySet
}

type fetchFailureKey struct{}

func (k keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.remote.VerifySignature(ctx, jwt)
	if err != nil && keyFetchFailed(err) {
		if p, ok := ctx.Value(fetchFailureKey{}).(*error); ok {
			*p = err
		}
	}
	return payload, err
}

// keyFetchFailed tells an error of fetching the key set: the request
// failed (refused, reset, timed out, or a 5xx answer, which keysClient
// turns into an error), or waiting for it outlasted the context.
func keyFetchFailed(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// errKeysStatus is a 5xx answer to the key set request.
var errKeysStatus = errors.New("key set request answered with a server error")

// keysTransport makes a 5xx answer to a key set request a transport
// error, so that it reaches keyFetchFailed as one: go-oidc reports the
// status of a failed fetch only as text. A 4xx stays an answer: a key set
// URL that is not found is a configuration problem, not an outage.
type keysTransport struct{ base http.RoundTripper }

func (t keysTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 500 {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%w: %s", errKeysStatus, resp.Status)
	}
	return resp, nil
}

// keysClient is c with keysTransport around its transport.
func keysClient(c *http.Client) *http.Client {
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp := *c
	cp.Transport = keysTransport{base: base}
	return &cp
}

// verifyToken runs v on raw and wraps what fails: ErrProvider when the
// key set could not be fetched, ErrTokenInvalid otherwise.
func (c *Client) verifyToken(ctx context.Context, v *oidc.IDTokenVerifier, raw string) (*oidc.IDToken, error) {
	var fetchErr error
	t, err := v.Verify(context.WithValue(c.ctx(ctx), fetchFailureKey{}, &fetchErr), raw)
	switch {
	case err == nil:
		return t, nil
	case fetchErr != nil:
		return nil, fmt.Errorf("%w: fetching the provider's keys: %w", ErrProvider, fetchErr)
	}
	return nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
}

// newVerifiers builds the ID token and logout token verifiers on one key
// set, as oidc.Provider.VerifierContext would (the provider's advertised
// algorithms that go-oidc supports), but with keySet in between.
func (c *Client) newVerifiers(p *oidc.Provider) (idTokens, logoutTokens *oidc.IDTokenVerifier, err error) {
	var meta struct {
		JWKS string   `json:"jwks_uri"`
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, nil, fmt.Errorf("%w: reading discovery document: %w", ErrProvider, err)
	}
	var algs []string
	for _, a := range meta.Algs {
		switch a {
		case oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA:
			algs = append(algs, a)
		}
	}
	// The key set fetches with bg: the provider may rotate keys long
	// after the request that caused discovery has ended.
	keys := keySet{remote: oidc.NewRemoteKeySet(oidc.ClientContext(c.bg, keysClient(c.cfg.HTTPClient)), meta.JWKS)}
	idTokens = oidc.NewVerifier(c.cfg.Issuer, keys, &oidc.Config{
		ClientID:             c.cfg.ClientID,
		Now:                  c.cfg.Now,
		SupportedSigningAlgs: algs,
	})
	// Logout tokens have no nonce and need not expire soon; their
	// freshness is checked on iat (VerifyLogoutToken).
	logoutTokens = oidc.NewVerifier(c.cfg.Issuer, keys, &oidc.Config{
		ClientID:             c.cfg.ClientID,
		Now:                  c.cfg.Now,
		SkipExpiryCheck:      true,
		SupportedSigningAlgs: algs,
	})
	return idTokens, logoutTokens, nil
}
