package policy

// ReasonMFA refuses a sign-in or session whose amr shows a single factor.
const ReasonMFA = "mfa_required"

// secondFactors are the RFC 8176 methods that are a factor beyond a
// password on their own: something the user has (otp, hwk, swk, sms, sc)
// or is (fpt, face, iris). Others (pwd, pin, kba, user, geo, ...) are
// knowledge, context or unspecific and prove nothing extra alone.
var secondFactors = [...]string{"otp", "hwk", "swk", "sms", "fpt", "face", "iris", "sc"}

// MFA reports whether an ID token's amr claim (RFC 8176) shows more than
// one factor: "mfa" itself, two or more distinct methods, or one method
// that is a second factor by nature. An empty or absent amr is single
// factor: a provider that does not say cannot be trusted to have asked.
// Values compare exactly, as the RFC registers them in lower case and a
// claim is a case-sensitive string.
func MFA(amr []string) bool {
	first := ""
	for _, m := range amr {
		if m == "" {
			continue
		}
		if m == "mfa" {
			return true
		}
		for _, f := range secondFactors {
			if m == f {
				return true
			}
		}
		// A repeated method is one method, not two factors.
		if first == "" {
			first = m
		} else if m != first {
			return true
		}
	}
	return false
}
