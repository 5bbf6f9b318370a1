package devidp

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

var otpCode = regexp.MustCompile(`id="otp-code">([0-9]{6})<`)

// postCode posts a one-time code for the auth request whose form is in page.
func (f *fixture) postCode(t *testing.T, br *http.Client, page, code string) (*http.Response, string) {
	t.Helper()
	m := formID.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in page:\n%s", page)
	}
	resp, err := br.PostForm(f.issuer+"/login", url.Values{"id": {m[1]}, "code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

// Issue 7, item 5: a user with SecondFactor types a one-time code shown
// on the provider's page after the password, and the ID token says so
// (amr ["pwd", "otp"]) at sign-in, on single sign-on reuse and on
// refresh; a wrong code is refused and three end the request.
func TestSecondFactor(t *testing.T) {
	f := newFixture(t)
	br := newBrowser(t)
	fl := newFlow()
	resp, page := f.authorize(t, br, fl)
	resp, page = f.submit(t, br, page, "olivia", "demo")
	m := otpCode.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("after the password: status %d, want 200 and a code page:\n%s", resp.StatusCode, page)
	}
	wrong := "000000"
	if m[1] == wrong {
		wrong = "111111"
	}
	if resp, again := f.postCode(t, br, page, wrong); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(again, "Wrong code") || !strings.Contains(again, m[1]) {
		t.Fatalf("wrong code: status %d, want 401 with the same code shown again:\n%s", resp.StatusCode, again)
	}
	resp, _ = f.postCode(t, br, page, m[1])
	tok, err := f.exchange(code(t, resp, fl), fl.verifier)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"pwd", "otp"}
	if c := f.verifyIDToken(t, tok, fl.nonce); c.Subject != "olivia" || !slices.Equal(c.AMR, want) {
		t.Errorf("ID token sub %q amr %v, want olivia and %v", c.Subject, c.AMR, want)
	}

	fl2 := newFlow()
	resp, _ = f.authorize(t, br, fl2)
	tok2, err := f.exchange(code(t, resp, fl2), fl2.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if c := f.verifyIDToken(t, tok2, fl2.nonce); !slices.Equal(c.AMR, want) {
		t.Errorf("SSO reuse: amr %v, want %v", c.AMR, want)
	}
	refreshed, err := f.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if c := f.verifyIDToken(t, refreshed, ""); !slices.Equal(c.AMR, want) {
		t.Errorf("refresh: amr %v, want %v", c.AMR, want)
	}
}

func TestSecondFactorRefused(t *testing.T) {
	f := newFixture(t)

	t.Run("code without password", func(t *testing.T) {
		br := newBrowser(t)
		_, page := f.authorize(t, br, newFlow())
		if resp, body := f.postCode(t, br, page, "123456"); resp.StatusCode != http.StatusBadRequest || strings.Contains(body, "otp-code") {
			t.Fatalf("code before any password: status %d, want 400 and no code:\n%s", resp.StatusCode, body)
		}
	})

	t.Run("three wrong codes", func(t *testing.T) {
		br := newBrowser(t)
		_, page := f.authorize(t, br, newFlow())
		_, page = f.submit(t, br, page, "olivia", "demo")
		m := otpCode.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no code page:\n%s", page)
		}
		wrong := "000000"
		if m[1] == wrong {
			wrong = "111111"
		}
		for range maxCodeTries {
			f.postCode(t, br, page, wrong)
		}
		if resp, body := f.postCode(t, br, page, m[1]); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("right code after %d wrong ones: status %d, want 400 (request ended):\n%s", maxCodeTries, resp.StatusCode, body)
		}
	})

	t.Run("password-only user gets no code step", func(t *testing.T) {
		br := newBrowser(t)
		fl := newFlow()
		_, page := f.authorize(t, br, fl)
		resp, _ := f.submit(t, br, page, "bob", "demo")
		tok, err := f.exchange(code(t, resp, fl), fl.verifier)
		if err != nil {
			t.Fatal(err)
		}
		if c := f.verifyIDToken(t, tok, fl.nonce); !slices.Equal(c.AMR, []string{"pwd"}) {
			t.Errorf("amr %v, want [pwd]", c.AMR)
		}
	})
}

// Issue 7, item 5: the sign-in page tells a newcomer whom to sign in as,
// unless HideUsers.
func TestLoginPageListsUsers(t *testing.T) {
	for _, hide := range []bool{false, true} {
		f := newFixture(t, func(c *Config) { c.HideUsers = hide })
		_, page := f.authorize(t, newBrowser(t), newFlow())
		for _, want := range []string{"alice / demo", "olivia / demo", "one-time code"} {
			if got := strings.Contains(page, want); got == hide {
				t.Errorf("HideUsers %v: page contains %q = %v, want %v", hide, want, got, !hide)
			}
		}
	}
}
