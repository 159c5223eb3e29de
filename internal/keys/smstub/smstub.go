// Package smstub is an in-memory stand-in for AWS Secrets Manager, for tests and local runs only: no
// Secrets Manager emulator is reachable from Sluice's build machines, so this small server speaks the
// JSON 1.1 protocol the aws-sdk-go-v2 secretsmanager client uses (POST /, X-Amz-Target:
// secretsmanager.<Operation>) for the operations Sluice calls: CreateSecret, GetSecretValue,
// PutSecretValue, DescribeSecret and ListSecrets, with version stages AWSCURRENT and AWSPREVIOUS.
// Production code talks to it through the real SDK client; only the endpoint differs. It does not
// authenticate requests, encrypt at rest, or implement rotation lambdas, deletion or resource policies.
package smstub

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
)

// Server is the stand-in. The zero value is not usable; call New.
type Server struct {
	region, account string

	mu      sync.Mutex
	secrets map[string]*secret // by name
	calls   map[string]int
}

type secret struct {
	arn, name, description string
	tags                   []tag
	created                time.Time
	versions               map[string]*version
	order                  []string // version ids, oldest first
}

type version struct {
	id      string
	str     *string
	bin     []byte
	stages  []string
	created time.Time
}

type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// New makes an empty store.
func New() *Server {
	return &Server{region: "us-east-1", account: "000000000000", secrets: map[string]*secret{}, calls: map[string]int{}}
}

// Start serves s on a loopback port; the caller stops the returned server.
func (s *Server) Start() *httptest.Server { return httptest.NewServer(s) }

// Calls is how many requests of operation op (e.g. "GetSecretValue") were served.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

type apiError struct {
	status int
	typ    string
	msg    string
}

func notFound() *apiError {
	return &apiError{400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."}
}

func invalid(format string, args ...any) *apiError {
	return &apiError{400, "InvalidParameterException", fmt.Sprintf(format, args...)}
}

// ServeHTTP dispatches on X-Amz-Target like the real endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "secretsmanager.")
	if r.Method != http.MethodPost || !ok {
		writeErr(w, &apiError{400, "UnknownOperationException", "unknown target " + target})
		return
	}
	var in map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeErr(w, &apiError{400, "SerializationException", "request body is not JSON"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	var out any
	var aerr *apiError
	switch op {
	case "CreateSecret":
		out, aerr = s.create(in)
	case "GetSecretValue":
		out, aerr = s.get(in)
	case "PutSecretValue":
		out, aerr = s.put(in)
	case "DescribeSecret":
		out, aerr = s.describe(in)
	case "ListSecrets":
		out, aerr = s.list(in)
	default:
		aerr = &apiError{400, "UnknownOperationException", "operation " + op + " is not implemented by the stand-in"}
	}
	if aerr != nil {
		writeErr(w, aerr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func writeErr(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", e.typ)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.msg})
}

func field[T any](in map[string]json.RawMessage, name string) (T, bool) {
	var v T
	raw, ok := in[name]
	if !ok || string(raw) == "null" {
		return v, false
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, false
	}
	return v, true
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newVersionID() string {
	h := randHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// lookup finds a secret by name or ARN.
func (s *Server) lookup(in map[string]json.RawMessage) (*secret, *apiError) {
	id, ok := field[string](in, "SecretId")
	if !ok || id == "" {
		return nil, invalid("SecretId is required")
	}
	if sec, ok := s.secrets[id]; ok {
		return sec, nil
	}
	for _, sec := range s.secrets {
		if sec.arn == id {
			return sec, nil
		}
	}
	return nil, notFound()
}

// value reads SecretString / SecretBinary (base64 in JSON, decoded by encoding/json into []byte).
func value(in map[string]json.RawMessage) (*string, []byte, *apiError) {
	str, hasStr := field[string](in, "SecretString")
	bin, hasBin := field[[]byte](in, "SecretBinary")
	switch {
	case hasStr && hasBin:
		return nil, nil, invalid("You can't specify both a binary secret value and a string secret value in the same secret.")
	case hasStr:
		return &str, nil, nil
	case hasBin:
		return nil, bin, nil
	}
	return nil, nil, nil
}

func (s *Server) create(in map[string]json.RawMessage) (any, *apiError) {
	name, ok := field[string](in, "Name")
	if !ok || name == "" {
		return nil, invalid("Name is required")
	}
	if _, exists := s.secrets[name]; exists {
		return nil, &apiError{400, "ResourceExistsException", "The operation failed because the secret " + name + " already exists."}
	}
	str, bin, aerr := value(in)
	if aerr != nil {
		return nil, aerr
	}
	desc, _ := field[string](in, "Description")
	tags, _ := field[[]tag](in, "Tags")
	now := time.Now()
	sec := &secret{arn: fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", s.region, s.account, name, randHex(3)),
		name: name, description: desc, tags: tags, created: now, versions: map[string]*version{}}
	s.secrets[name] = sec
	out := map[string]any{"ARN": sec.arn, "Name": name}
	if str != nil || bin != nil {
		id, _ := field[string](in, "ClientRequestToken")
		if id == "" {
			id = newVersionID()
		}
		sec.addVersion(&version{id: id, str: str, bin: bin, created: now})
		out["VersionId"] = id
	}
	return out, nil
}

// addVersion makes v AWSCURRENT; the previous current becomes AWSPREVIOUS, the older previous
// loses its label (as Secrets Manager does).
func (sec *secret) addVersion(v *version) {
	for _, o := range sec.versions {
		o.stages = slices.DeleteFunc(o.stages, func(st string) bool { return st == stagePrevious })
		if i := slices.Index(o.stages, stageCurrent); i >= 0 {
			o.stages[i] = stagePrevious
		}
	}
	v.stages = []string{stageCurrent}
	sec.versions[v.id] = v
	sec.order = append(sec.order, v.id)
}

func (s *Server) get(in map[string]json.RawMessage) (any, *apiError) {
	sec, aerr := s.lookup(in)
	if aerr != nil {
		return nil, aerr
	}
	id, hasID := field[string](in, "VersionId")
	stage, hasStage := field[string](in, "VersionStage")
	var v *version
	switch {
	case hasID:
		v = sec.versions[id]
		if v != nil && hasStage && !slices.Contains(v.stages, stage) {
			return nil, invalid("You provided a VersionStage that is not associated to the provided VersionId.")
		}
	default:
		if !hasStage {
			stage = stageCurrent
		}
		for _, o := range sec.versions {
			if slices.Contains(o.stages, stage) {
				v = o
			}
		}
	}
	if v == nil {
		return nil, &apiError{400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for the requested version or staging label."}
	}
	out := map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": v.id, "VersionStages": v.stages, "CreatedDate": epoch(v.created)}
	if v.str != nil {
		out["SecretString"] = *v.str
	}
	if v.bin != nil {
		out["SecretBinary"] = v.bin
	}
	return out, nil
}

func (s *Server) put(in map[string]json.RawMessage) (any, *apiError) {
	sec, aerr := s.lookup(in)
	if aerr != nil {
		return nil, aerr
	}
	str, bin, aerr := value(in)
	if aerr != nil {
		return nil, aerr
	}
	if str == nil && bin == nil {
		return nil, invalid("You must provide either SecretString or SecretBinary.")
	}
	id, _ := field[string](in, "ClientRequestToken")
	if id == "" {
		id = newVersionID()
	}
	if _, exists := sec.versions[id]; exists {
		return nil, &apiError{400, "ResourceExistsException", "A resource with the ID you requested already exists."}
	}
	v := &version{id: id, str: str, bin: bin, created: time.Now()}
	sec.addVersion(v)
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": id, "VersionStages": v.stages}, nil
}

func (sec *secret) stages() map[string][]string {
	m := map[string][]string{}
	for id, v := range sec.versions {
		if len(v.stages) > 0 {
			m[id] = v.stages
		}
	}
	return m
}

func (sec *secret) summary() map[string]any {
	last := sec.created
	if n := len(sec.order); n > 0 {
		last = sec.versions[sec.order[n-1]].created
	}
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "Description": sec.description, "Tags": sec.tags,
		"CreatedDate": epoch(sec.created), "LastChangedDate": epoch(last)}
}

func (s *Server) describe(in map[string]json.RawMessage) (any, *apiError) {
	sec, aerr := s.lookup(in)
	if aerr != nil {
		return nil, aerr
	}
	out := sec.summary()
	out["VersionIdsToStages"] = sec.stages()
	return out, nil
}

type filter struct {
	Key    string   `json:"Key"`
	Values []string `json:"Values"`
}

func (s *Server) list(in map[string]json.RawMessage) (any, *apiError) {
	filters, _ := field[[]filter](in, "Filters")
	var names []string
	for name, sec := range s.secrets {
		if matches(sec, filters) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	list := make([]map[string]any, 0, len(names))
	for _, n := range names {
		sec := s.secrets[n]
		e := sec.summary()
		e["SecretVersionsToStages"] = sec.stages()
		list = append(list, e)
	}
	return map[string]any{"SecretList": list}, nil
}

// matches applies the filters the stand-in knows (name, tag-key, tag-value; prefix match, as AWS).
func matches(sec *secret, filters []filter) bool {
	for _, f := range filters {
		ok := false
		for _, want := range f.Values {
			switch f.Key {
			case "name":
				ok = ok || strings.HasPrefix(sec.name, want)
			case "tag-key":
				ok = ok || slices.ContainsFunc(sec.tags, func(t tag) bool { return strings.HasPrefix(t.Key, want) })
			case "tag-value":
				ok = ok || slices.ContainsFunc(sec.tags, func(t tag) bool { return strings.HasPrefix(t.Value, want) })
			case "description":
				ok = ok || strings.HasPrefix(sec.description, want)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
