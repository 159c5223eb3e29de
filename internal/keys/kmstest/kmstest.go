// Package kmstest runs nsmithuk/local-kms (a KMS emulator written in Go, fetched from the Go module
// proxy) in-process on a loopback port, for tests of the KMS signer and the KMS master key. It
// answers the same JSON 1.1 protocol as AWS KMS (X-Amz-Target: TrentService.<Operation>), so the
// code under test uses the real aws-sdk-go-v2 client with only the endpoint changed.
package kmstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	lkconfig "github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
	"github.com/nsmithuk/local-kms/src/handler"
	"github.com/sirupsen/logrus"
)

var once sync.Once

// Start serves a fresh local-kms (its own leveldb under t.TempDir) and returns its endpoint URL.
func Start(t testing.TB) string {
	t.Helper()
	once.Do(func() { // local-kms keeps its account and region in package variables
		lkconfig.AWSAccountId = "111122223333"
		lkconfig.AWSRegion = "us-east-1"
	})
	db := data.NewDatabase(t.TempDir())
	log := logrus.New()
	log.SetOutput(io.Discard)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, db, log)
	}))
	t.Cleanup(func() { srv.Close(); db.Close() })
	return srv.URL
}

// serve is local-kms's own request dispatch (src.HandleRequest) with a quiet logger.
func serve(w http.ResponseWriter, r *http.Request, db *data.Database, log *logrus.Logger) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	target := strings.Split(r.Header.Get("X-Amz-Target"), ".")
	if r.Method != http.MethodPost || len(target) < 2 {
		w.WriteHeader(http.StatusNotImplemented)
		return
	}
	h := handler.NewRequestHandler(r, log, db)
	m := reflect.ValueOf(h).MethodByName(target[1])
	if !m.IsValid() {
		w.WriteHeader(http.StatusNotImplemented)
		_, _ = io.WriteString(w, `{"__type":"UnsupportedOperationException","message":"not implemented by local-kms"}`)
		return
	}
	resp, ok := m.Call(nil)[0].Interface().(handler.Response)
	if !ok {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(resp.Code)
	_, _ = io.WriteString(w, resp.Body)
}
