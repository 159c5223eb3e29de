// Package kmstest runs nsmithuk/local-kms (a KMS emulator written in Go, fetched from the Go module
// proxy) in-process on a loopback port, for tests of the KMS signer and the KMS master key. It
// answers the same JSON 1.1 protocol as AWS KMS (X-Amz-Target: TrentService.<Operation>), so the
// code under test uses the real aws-sdk-go-v2 client with only the endpoint changed.
package kmstest

import (
	"crypto/ecdsa"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/google/uuid"
	"github.com/nsmithuk/local-kms/src/cmk"

	lkconfig "github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
	"github.com/nsmithuk/local-kms/src/handler"
	"github.com/sirupsen/logrus"
)

var once sync.Once

// Server is a running local-kms.
type Server struct {
	// URL is the endpoint to give the SDK client (BaseEndpoint).
	URL string
	db  *data.Database
}

// Start serves a fresh local-kms (its own leveldb under t.TempDir) on a loopback port.
func Start(t testing.TB) *Server {
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
	return &Server{URL: srv.URL, db: db}
}

// ImportSecp256k1 stores key as a new ECC_SECG_P256K1 signing key and returns its key id, so that a
// test can put an account it already funded (a dev chain's prefunded key) behind KMS. Real KMS does
// not import asymmetric key material this way; local-kms keeps keys in its database, which this
// writes directly.
func (s *Server) ImportSecp256k1(t testing.TB, key *ecdsa.PrivateKey) string {
	t.Helper()
	id := uuid.NewString()
	md := cmk.KeyMetadata{Arn: lkconfig.ArnPrefix() + "key/" + id, KeyId: id, AWSAccountId: lkconfig.AWSAccountId,
		CreationDate: time.Now().Unix(), Enabled: true, KeyManager: "CUSTOMER", KeyState: cmk.KeyStateEnabled,
		Origin: cmk.KeyOriginAwsKms}
	k, err := cmk.NewEccKey(cmk.SpecEccSecp256k1, md, "{}")
	if err != nil {
		t.Fatal(err)
	}
	// local-kms identifies the curve by btcec's curve value (go-ethereum's S256 is another object).
	k.PrivateKey = cmk.EcdsaPrivateKey(ecdsa.PrivateKey{D: new(big.Int).Set(key.D),
		PublicKey: ecdsa.PublicKey{Curve: btcec.S256(), X: new(big.Int).Set(key.X), Y: new(big.Int).Set(key.Y)}})
	if err := s.db.SaveKey(k); err != nil {
		t.Fatal(err)
	}
	return id
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
