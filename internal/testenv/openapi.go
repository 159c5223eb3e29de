package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// OpenAPI checks HTTP answers against an OpenAPI 3.1 document with kin-openapi (which checks 3.1 schemas
// as JSON Schema 2020-12): the one check behind the public API's, the admin API's and the CLI's tests,
// which validate every answer they receive.
type OpenAPI struct {
	name    string
	router  routers.Router
	checked atomic.Int64
}

// NewOpenAPI loads and validates doc (named name in messages, e.g. "openapi.json").
func NewOpenAPI(name string, doc []byte) (*OpenAPI, error) {
	d, err := openapi3.NewLoader().LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := d.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d.Servers = nil // relative servers ("/"): match any host
	r, err := legacy.NewRouter(d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &OpenAPI{name: name, router: r}, nil
}

// Validate checks one answer (status, header, body) to req, whose body was reqBody. documented is false
// for a route the document does not have (nothing to check it against); err says how the answer differs
// from the document.
func (o *OpenAPI) Validate(req *http.Request, reqBody []byte, status int, h http.Header, body []byte) (documented bool, err error) {
	r := req.Clone(context.Background())
	if r.URL.Host == "" {
		r.URL.Scheme, r.URL.Host = "http", req.Host
	}
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := o.router.FindRoute(r)
	if err != nil {
		return false, nil
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: h,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(body)
	return true, openapi3filter.ValidateResponse(context.Background(), out)
}

// Check fails t when a documented route's answer differs from the document. Undocumented routes (the
// 404 and 405 tests) are passed over.
func (o *OpenAPI) Check(t testing.TB, req *http.Request, reqBody []byte, status int, h http.Header, body []byte) {
	t.Helper()
	documented, err := o.Validate(req, reqBody, status, h, body)
	if err != nil {
		t.Errorf("%s %s → %d does not match %s: %v\nbody: %.400s", req.Method, req.URL.Path, status, o.name, err, body)
	}
	if documented {
		o.checked.Add(1)
	}
}

// Checked is how many answers of documented routes Check validated.
func (o *OpenAPI) Checked() int64 { return o.checked.Load() }
