package gateway

import (
	"crypto/hmac"
	"crypto/sha256"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// Masker returns the mask of exports with mask=true. Its key is derived
// from the app secret under its own label, so it is stable across
// instances and restarts (two exports correlate) and reveals nothing of the
// keys that seal tokens or sign CSRF tokens.
func (rt *Runtime) Masker() *activity.Mask {
	mac := hmac.New(sha256.New, rt.cfg.Secret)
	mac.Write([]byte("gatehouse export mask"))
	return activity.NewMask(mac.Sum(nil))
}
