package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func sign(secret string, t time.Time, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(t.Unix(), 10) + "." + string(body)))
	return hex.EncodeToString(m.Sum(nil))
}

func TestVerifySignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"e1","type":"withdrawal.confirmed"}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	good := "t=" + ts + ",v1=" + sign("s1", now, body)
	rotating := "t=" + ts + ",v1=" + sign("s2", now, body) + ",v1=" + sign("s1", now, body)
	for _, c := range []struct {
		name   string
		header string
		body   []byte
		secret string
		at     time.Time
		want   error
	}{
		{"valid", good, body, "s1", now, nil},
		{"clock skew within tolerance", good, body, "s1", now.Add(-4 * time.Minute), nil},
		{"old secret during rotation", rotating, body, "s1", now, nil},
		{"new secret during rotation", rotating, body, "s2", now, nil},
		{"replay after the window", good, body, "s1", now.Add(5*time.Minute + time.Second), ErrSignatureTooOld},
		{"from the future", good, body, "s1", now.Add(-6 * time.Minute), ErrSignatureTooOld},
		{"tampered body", good, []byte(`{"id":"e1","type":"withdrawal.failed"}`), "s1", now, ErrSignatureMismatch},
		{"wrong secret", good, body, "s3", now, ErrSignatureMismatch},
		{"timestamp changed", "t=" + strconv.FormatInt(now.Unix()+1, 10) + ",v1=" + sign("s1", now, body), body, "s1", now, ErrSignatureMismatch},
		{"no signature", "t=" + ts, body, "s1", now, ErrSignatureHeader},
		{"garbage", "sig", body, "s1", now, ErrSignatureHeader},
		{"empty", "", body, "s1", now, ErrSignatureHeader},
	} {
		if err := VerifySignature(c.header, c.body, c.secret, DefaultTolerance, c.at); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestErrorDecoding(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			t.Errorf("auth header %q", r.Header.Get("Authorization"))
		}
		w.Header().Set("X-Correlation-ID", "cid-1")
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/withdrawals/x" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("upstream down"))
			return
		}
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"error":{"code":"limit_exceeded","field":"amount","message":"rule daily_total"}}`))
	}))
	defer srv.Close()
	c := New(srv.URL+"/", "k", nil)
	_, _, err := c.CreateWithdrawal(t.Context(), CreateWithdrawal{ExternalID: "a"})
	var e *Error
	if !errors.As(err, &e) || e.Status != 422 || e.Code != "limit_exceeded" || e.Field != "amount" || e.CorrelationID != "cid-1" || e.Retryable() {
		t.Fatalf("%#v", err)
	}
	_, err = c.GetWithdrawal(t.Context(), "x")
	if !errors.As(err, &e) || e.Code != "http_503" || !e.Retryable() {
		t.Fatalf("%#v", err)
	}
}
