package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// API calls the Sluice HTTP API with a bearer key, over real HTTP. It is safe to use from goroutines:
// failures are reported with Errorf.
type API struct {
	T         testing.TB
	Base, Key string
}

// Do sends body (a string as it is, anything else as JSON, nil as nothing) and, when out is not nil,
// decodes a 2xx answer into it. It returns the status and the raw answer; 0 when the request failed.
func (a API) Do(method, path string, body, out any) (int, []byte) {
	a.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			a.T.Errorf("%s %s: encode body: %v", method, path, err)
			return 0, nil
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.Base+path, rd)
	if err != nil {
		a.T.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+a.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.T.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			a.T.Errorf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, raw
}

// WaitReady waits up to 20 s for base/readyz to answer 200. Services that stop first (an error on
// stopped) fail the test with their own error.
func WaitReady(t testing.TB, base string, stopped <-chan error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-stopped:
			t.Fatalf("services stopped before the API was ready: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("API at %s not ready within 20s", base)
}
