package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Every response the api tests receive through env.do is checked against openapi.json with
// kin-openapi (the document is OpenAPI 3.1.0, whose schemas kin-openapi checks as JSON Schema 2020-12;
// see docs/integration.md). A response of a documented
// route whose status or body the document does not describe fails the test that received it.

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
	// specChecked counts the responses checked.
	specChecked atomic.Int64
)

func openAPIRouter() (routers.Router, error) {
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(openAPIDoc)
		if err != nil {
			specErr = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			specErr = err
			return
		}
		// Servers are relative ("/"); match any host.
		doc.Servers = nil
		specRouter, specErr = legacy.NewRouter(doc)
	})
	return specRouter, specErr
}

// checkAgainstSpec validates one exchange. Requests to undocumented routes (the 404/405 tests) have
// nothing to be checked against, and are skipped.
func checkAgainstSpec(t testing.TB, req *http.Request, reqBody []byte, res *http.Response, raw []byte) {
	t.Helper()
	checked, err := specError(req, reqBody, res.StatusCode, res.Header, raw)
	if err != nil {
		t.Errorf("%s %s → %d does not match openapi.json: %v\nbody: %.400s", req.Method, req.URL.Path, res.StatusCode, err, raw)
	}
	if checked {
		specChecked.Add(1)
	}
}

func specError(req *http.Request, reqBody []byte, status int, h http.Header, raw []byte) (bool, error) {
	router, err := openAPIRouter()
	if err != nil {
		return false, err
	}
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := router.FindRoute(r)
	if err != nil {
		return false, nil
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: h,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(raw)
	return true, openapi3filter.ValidateResponse(context.Background(), out)
}

// TestSpecValidationBites proves the check is not vacuous: responses that differ from the document
// are caught.
func TestSpecValidationBites(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "http://x/v1/withdrawals", nil)
	h := http.Header{"Content-Type": {"application/json"}}
	for _, c := range []struct {
		status int
		body   string
	}{
		{201, `{}`}, // required fields missing
		{418, `{"error":{"code":"internal","field":null,"message":"x"}}`}, // undocumented status
		{422, `{"error":{"code":"no_such_code","field":null,"message":"x"}}`},
		{422, `{"error":{"code":"limit_exceeded","message":"x"}}`}, // field missing
	} {
		checked, err := specError(req, nil, c.status, h, []byte(c.body))
		if !checked || err == nil {
			t.Errorf("%d %s passed validation", c.status, c.body)
		}
	}
	checked, err := specError(req, nil, 422, h, []byte(`{"error":{"code":"limit_exceeded","field":"amount","message":"rule daily_total"}}`))
	if !checked || err != nil {
		t.Errorf("a valid 422: %v", err)
	}
	// OpenAPI 3.1: null is allowed where the type array has "null", and only there.
	w := func(status, amount, from string) []byte {
		return []byte(`{"id":"0190c7a4-0000-7000-8000-000000000001","external_id":"x","chain":"local","asset":"USDT",
			"to":"0x00000000000000000000000000000000000000b1","amount":` + amount + `,"status":` + status + `,"waiting":null,"from":` + from + `,
			"nonce":null,"tx_hash":null,"batch_id":null,"block_number":null,"confirmations":null,"error":null,
			"created_at":"2026-01-01T00:00:00.000000Z","updated_at":"2026-01-01T00:00:00.000000Z"}`)
	}
	if checked, err := specError(req, nil, 201, h, w(`"PENDING"`, `"12.5"`, `null`)); !checked || err != nil {
		t.Errorf("a valid 201 with nulls: %v", err)
	}
	for _, bad := range [][]byte{w(`null`, `"12.5"`, `null`), w(`"PENDING"`, `12.5`, `null`), w(`"PENDING"`, `"1"`, `7`)} {
		if checked, err := specError(req, nil, 201, h, bad); !checked || err == nil {
			t.Errorf("%s passed validation", bad)
		}
	}
}

func TestOpenAPIDocumentLoads(t *testing.T) {
	if _, err := openAPIRouter(); err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDoc)
	if err != nil || !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.json is not OpenAPI 3.1 (%v)", err)
	}
	if bytes.Contains(openAPIDoc, []byte(`"nullable"`)) {
		t.Fatal("openapi.json uses nullable, which OpenAPI 3.1 ignores: use a type array with \"null\"")
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	fmt.Fprintf(os.Stderr, "api tests: %d responses validated against openapi.json\n", specChecked.Load())
	os.Exit(code)
}
