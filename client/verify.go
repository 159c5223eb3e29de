package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Webhook headers.
const (
	HeaderSignature = "Sluice-Signature"
	HeaderEventID   = "Sluice-Event-Id"
	HeaderEventType = "Sluice-Event-Type"
)

// DefaultTolerance is the replay window VerifySignature is usually given: a delivery signed longer ago
// (or further in the future, for clock skew) is refused.
const DefaultTolerance = 5 * time.Minute

// Signature errors.
var (
	ErrSignatureHeader   = errors.New("malformed " + HeaderSignature + " header")
	ErrSignatureTooOld   = errors.New("webhook timestamp outside the tolerance (a replay?)")
	ErrSignatureMismatch = errors.New("no webhook signature matches")
)

// VerifySignature checks a webhook delivery: header is the Sluice-Signature header ("t=<unix>,v1=<hex>",
// possibly several v1 during a secret rotation), body the raw request body, secret the endpoint's
// signing secret. The signature is HMAC-SHA256(secret, "<t>.<body>"); t must be within tolerance of
// now. Verify before parsing the body, and de-duplicate on the Sluice-Event-Id header: delivery is at
// least once.
func VerifySignature(header string, body []byte, secret string, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrSignatureHeader
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrSignatureHeader
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrSignatureTooOld
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	want := m.Sum(nil)
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}
