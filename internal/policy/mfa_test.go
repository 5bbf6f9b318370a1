package policy

import "testing"

func TestMFA(t *testing.T) {
	tests := []struct {
		name string
		amr  []string
		want bool
	}{
		{"nil", nil, false},
		{"empty", []string{}, false},
		{"empty value", []string{""}, false},
		{"password only", []string{"pwd"}, false},
		{"pin only", []string{"pin"}, false},
		{"knowledge only", []string{"kba"}, false},
		{"password twice", []string{"pwd", "pwd"}, false},
		{"password and empty", []string{"pwd", ""}, false},
		{"unknown alone", []string{"retina-scan"}, false},
		{"upper case is not the registered value", []string{"OTP"}, false},
		{"mfa", []string{"mfa"}, true},
		{"mfa with password", []string{"pwd", "mfa"}, true},
		{"password and otp", []string{"pwd", "otp"}, true},
		{"otp alone", []string{"otp"}, true},
		{"hardware key", []string{"hwk"}, true},
		{"software key", []string{"swk"}, true},
		{"sms", []string{"sms"}, true},
		{"fingerprint", []string{"fpt"}, true},
		{"face", []string{"face"}, true},
		{"iris", []string{"iris"}, true},
		{"smart card", []string{"sc"}, true},
		{"two methods", []string{"pwd", "kba"}, true},
		{"two methods after a duplicate", []string{"pwd", "pwd", "pin"}, true},
		{"password and unknown", []string{"pwd", "x-custom"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MFA(tt.amr); got != tt.want {
				t.Errorf("MFA(%q) = %v, want %v", tt.amr, got, tt.want)
			}
		})
	}
}
