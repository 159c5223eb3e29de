package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-custody/sluice/admin"
)

func newRequestID() string { return uuid.NewString() }

// session is what the token file keeps for one admin API. The tokens are secrets: they are written
// only to the 0600 file and sent only to the URL they were issued by, never printed.
type session struct {
	AccessToken  string     `json:"access_token"`
	RefreshToken string     `json:"refresh_token"`
	ExpiresAt    time.Time  `json:"expires_at"`
	Operator     string     `json:"operator"`
	Role         admin.Role `json:"role"`
}

// tokenFile is ops-token.json: one session per admin API URL, so a token is never sent to another server.
type tokenFile struct {
	Sessions map[string]session `json:"sessions"`
}

func (r *runner) tokenPath() (string, error) {
	dir := r.env("XDG_CONFIG_HOME")
	if dir == "" {
		home := r.env("HOME")
		if home == "" {
			return "", errors.New("cannot find the config directory: neither XDG_CONFIG_HOME nor HOME is set")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "sluice", "ops-token.json"), nil
}

func (r *runner) loadTokens() (tokenFile, error) {
	tf := tokenFile{Sessions: map[string]session{}}
	p, err := r.tokenPath()
	if err != nil {
		return tf, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return tf, nil
	}
	if err != nil {
		return tf, fmt.Errorf("read token file: %w", err)
	}
	if err := json.Unmarshal(b, &tf); err != nil {
		return tf, fmt.Errorf("token file %s is damaged (remove it and log in again): %w", p, err)
	}
	if tf.Sessions == nil {
		tf.Sessions = map[string]session{}
	}
	return tf, nil
}

// saveTokens writes the file with mode 0600 through a temporary file renamed over it, so a crash
// never leaves half a file and the secret is never readable by others, not even for a moment.
func (r *runner) saveTokens(tf tokenFile) error {
	p, err := r.tokenPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}
	b, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return fmt.Errorf("encode token file: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".ops-token-*")
	if err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write token file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	return nil
}

// baseURL is --url without a trailing slash: the key of the token file.
func (r *runner) baseURL() string { return strings.TrimRight(r.url, "/") }

// apiError is an error answer of the admin API.
type apiError struct {
	Status  int
	Code    string
	Field   string
	Message string
}

func (e *apiError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Field != "" {
		msg += " (field: " + e.Field + ")"
	}
	return msg
}

var errNotLoggedIn = errors.New("not logged in")

// response is one answer of the API.
type response struct {
	status int
	body   []byte
}

// call sends one request with the kept token, refreshing it first when it has expired and once more
// when the API answers 401 (the clocks may disagree). Every call has the --timeout deadline.
func (r *runner) call(method, path string, query url.Values, body any) (response, error) {
	tf, err := r.loadTokens()
	if err != nil {
		return response{}, err
	}
	s, ok := tf.Sessions[r.baseURL()]
	if !ok || s.AccessToken == "" {
		return response{}, &exitError{code: ExitFailed, msg: "not logged in to " + r.baseURL() + ": run `sluice ops login`"}
	}
	refreshed := false
	if !s.ExpiresAt.IsZero() && r.now().Add(10*time.Second).After(s.ExpiresAt) {
		if s, err = r.refresh(tf, s); err != nil {
			return response{}, err
		}
		refreshed = true
	}
	resp, err := r.send(method, path, query, body, s.AccessToken)
	if err != nil {
		return resp, err
	}
	if resp.status == http.StatusUnauthorized && !refreshed && s.RefreshToken != "" {
		if s, err = r.refresh(tf, s); err != nil {
			return response{}, err
		}
		resp, err = r.send(method, path, query, body, s.AccessToken)
		if err != nil {
			return resp, err
		}
	}
	if resp.status == http.StatusUnauthorized {
		return resp, &exitError{code: ExitFailed, msg: "session expired or revoked (" + decodeError(resp).Error() + "): run `sluice ops login`"}
	}
	return resp, nil
}

// refresh trades the refresh token for new tokens (the API rotates it) and keeps them.
func (r *runner) refresh(tf tokenFile, s session) (session, error) {
	if s.RefreshToken == "" {
		return s, &exitError{code: ExitFailed, msg: "session expired: run `sluice ops login`"}
	}
	resp, err := r.send(http.MethodPost, "/admin/v1/auth/refresh", nil, map[string]string{"refresh_token": s.RefreshToken}, "")
	if err != nil {
		return s, err
	}
	if resp.status != http.StatusOK {
		delete(tf.Sessions, r.baseURL())
		if err := r.saveTokens(tf); err != nil {
			return s, err
		}
		return s, &exitError{code: ExitFailed, msg: "session expired (" + decodeError(resp).Error() + "): run `sluice ops login`"}
	}
	var t admin.Tokens
	if err := json.Unmarshal(resp.body, &t); err != nil {
		return s, fmt.Errorf("decode refresh answer: %w", err)
	}
	s = sessionOf(t)
	tf.Sessions[r.baseURL()] = s
	return s, r.saveTokens(tf)
}

func sessionOf(t admin.Tokens) session {
	return session{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, ExpiresAt: t.ExpiresAt,
		Operator: t.Operator.Username, Role: t.Operator.Role}
}

// send is one HTTP exchange. token "" sends no Authorization header.
func (r *runner) send(method, path string, query url.Values, body any, token string) (response, error) {
	u := r.baseURL() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	ctx := r.ctx
	if r.timeout > 0 {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return response{}, &exitError{code: ExitUsage, msg: fmt.Sprintf("bad --url %q: %v", r.url, err)}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := r.http
	if client == nil {
		client = &http.Client{Timeout: r.timeout}
	}
	res, err := client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("cannot reach the admin API at %s: %w", r.baseURL(), redactURLError(err))
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return response{}, fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	return response{status: res.StatusCode, body: b}, nil
}

// redactURLError drops the *url.Error wrapper, whose text repeats the URL with its query.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeError reads {"error":{"code","field","message"}}, or makes do with the status when the body
// is something else (a proxy's HTML page).
func decodeError(resp response) *apiError {
	var e struct {
		Error admin.Error `json:"error"`
	}
	ae := &apiError{Status: resp.status}
	if err := json.Unmarshal(resp.body, &e); err == nil && e.Error.Message != "" {
		ae.Code, ae.Field, ae.Message = e.Error.Code, e.Error.Field, e.Error.Message
		return ae
	}
	ae.Message = fmt.Sprintf("%d %s", resp.status, http.StatusText(resp.status))
	if s := strings.TrimSpace(string(resp.body)); s != "" && len(s) < 200 && !strings.HasPrefix(s, "<") {
		ae.Message += ": " + s
	}
	return ae
}

// get calls GET path and decodes the 200 answer into v (unless --json, which prints it as it came).
// It reports whether the caller should print v.
func (r *runner) get(path string, query url.Values, v any) (bool, error) {
	resp, err := r.call(http.MethodGet, path, query, nil)
	if err != nil {
		return false, err
	}
	if resp.status != http.StatusOK {
		return false, decodeError(resp)
	}
	if r.json {
		return false, r.printJSON(resp.body)
	}
	if err := json.Unmarshal(resp.body, v); err != nil {
		return false, fmt.Errorf("decode answer of GET %s: %w", path, err)
	}
	return true, nil
}

// printJSON prints an API answer indented, as it came.
func (r *runner) printJSON(b []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		_, err = r.stdout.Write(b)
		return err
	}
	buf.WriteByte('\n')
	_, err := r.stdout.Write(buf.Bytes())
	return err
}
