package api

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/sluice-custody/sluice/internal/testenv"
)

// Every response the api tests receive through env.do is checked against openapi.json with
// kin-openapi (the document is OpenAPI 3.1.0, whose schemas kin-openapi checks as JSON Schema 2020-12;
// see docs/integration.md). A response of a documented
// route whose status or body the document does not describe fails the test that received it.

// spec is openapi.json, loaded once for the package's tests.
var spec = sync.OnceValues(func() (*testenv.OpenAPI, error) { return testenv.NewOpenAPI("openapi.json", openAPIDoc) })

// checkAgainstSpec validates one exchange (undocumented routes, the 404/405 tests, are passed over).
func checkAgainstSpec(t testing.TB, req *http.Request, reqBody []byte, res *http.Response, raw []byte) {
	t.Helper()
	o, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	o.Check(t, req, reqBody, res.StatusCode, res.Header, raw)
}

func specError(req *http.Request, reqBody []byte, status int, h http.Header, raw []byte) (bool, error) {
	o, err := spec()
	if err != nil {
		return false, err
	}
	return o.Validate(req, reqBody, status, h, raw)
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
	if _, err := spec(); err != nil {
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
	if o, err := spec(); err == nil {
		fmt.Fprintf(os.Stderr, "api tests: %d responses validated against openapi.json\n", o.Checked())
	}
	os.Exit(code)
}
