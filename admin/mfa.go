package admin

import "strings"

// methodNames are the RFC 8176 authentication methods people meet, in
// words for the pages; others show as their registered value.
var methodNames = map[string]string{
	"pwd":  "Password",
	"otp":  "One-time code",
	"hwk":  "Security key",
	"swk":  "Software key",
	"sms":  "Text message",
	"fpt":  "Fingerprint",
	"face": "Face",
	"iris": "Iris",
	"sc":   "Smart card",
	"pin":  "PIN",
	"pop":  "Proof of possession",
	"user": "User presence",
	"kba":  "Knowledge question",
	"mfa":  "Multiple factors",
}

// authLabel says how a session signed in, for a page: "MFA" when it had a
// second factor, otherwise its one method in words ("Password"), or ""
// when the provider did not say. title lists every method, for a tooltip.
func authLabel(amr []string, mfa bool) (label, title string) {
	words := make([]string, 0, len(amr))
	for _, m := range amr {
		if n, ok := methodNames[m]; ok {
			m = n
		}
		words = append(words, m)
	}
	title = strings.Join(words, ", ")
	switch {
	case mfa:
		return "MFA", title
	case len(words) > 0:
		return words[0], title
	}
	return "", ""
}
