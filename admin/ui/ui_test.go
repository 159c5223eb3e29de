package ui

import (
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	rd := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		rd = zr
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The shell at /ops/ and /ops/login, modules as JavaScript (browsers refuse a module of another type),
// the CSP and the other headers on every answer, with and without the /ops prefix stripped.
func TestHandlerServes(t *testing.T) {
	h := Handler()
	for _, c := range []struct{ path, ctype, contains string }{
		{"/ops/", "text/html", `<script type="module" src="/ops/js/app.js">`},
		{"/ops/login", "text/html", `<script type="module" src="/ops/js/app.js">`},
		{"/", "text/html", "<html"}, // mounted behind http.StripPrefix("/ops")
		{"/login", "text/html", "<html"},
		{"/ops/js/app.js", "text/javascript", "import"},
		{"/js/pages/overview.js", "text/javascript", "export default"},
		{"/ops/app.css", "text/css", "prefers-color-scheme: dark"},
		{"/ops/favicon.svg", "image/svg+xml", "<svg"},
	} {
		r := get(t, h, "GET", c.path, "Accept-Encoding", "gzip, deflate")
		if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), c.ctype) || !strings.Contains(body(t, r), c.contains) {
			t.Errorf("GET %s: %d %q, want 200 %s containing %q", c.path, r.StatusCode, r.Header.Get("Content-Type"), c.ctype, c.contains)
		}
		for k, want := range map[string]string{"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cache-Control": "no-cache"} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("GET %s: %s %q, want %q", c.path, k, got, want)
			}
		}
	}
	if r := get(t, h, "GET", "/ops/js/app.js", "Accept-Encoding", "gzip"); r.Header.Get("Content-Encoding") != "gzip" {
		t.Error("app.js is not sent gzipped to a browser that accepts it")
	}
	if r := get(t, h, "GET", "/ops/js/app.js", "Accept-Encoding", "gzip;q=0"); r.Header.Get("Content-Encoding") != "" {
		t.Error("gzip sent to a client that refuses it (q=0)")
	}
	r := get(t, h, "GET", "/ops/js/app.js")
	etag := r.Header.Get("ETag")
	if r := get(t, h, "GET", "/ops/js/app.js", "If-None-Match", etag); etag == "" || r.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with ETag %q: %d, want 304", etag, r.StatusCode)
	}
	for _, p := range []string{"/ops/nope.js", "/ops/../ui.go", "/ops/static/index.html"} {
		if r := get(t, h, "GET", p); r.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, r.StatusCode)
		}
	}
	if r := get(t, h, "POST", "/ops/"); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Content-Security-Policy") != CSP {
		t.Errorf("POST /ops/: %d, want 405 with the CSP", r.StatusCode)
	}
	if r := get(t, h, "GET", "/ops"); r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/ops/" {
		t.Errorf("GET /ops: %d → %q, want a redirect to /ops/", r.StatusCode, r.Header.Get("Location"))
	}
}

// What the CSP forbids is not in the sources either (it would only fail in the browser): no inline
// script or style, no style attribute, no eval or Function, no HTML parsed from strings (everything the
// server sends is set as text), no URL outside /ops/. And every module is preloaded by the shell, so the
// browser fetches them in one round instead of one level of imports after another.
func TestAssetsFollowTheCSP(t *testing.T) {
	html, err := static.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`<script>`, `<script(?:\s[^>]*)?>[^<]`, `<style`, `\sstyle=`, `\son[a-z]+=`, `https?://`} {
		if m := regexp.MustCompile(re).Find(html); m != nil {
			t.Errorf("index.html has %q (against the CSP)", m)
		}
	}
	bad := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(['"]|\.style\.|cssText|https?://`)
	var total int
	err = fs.WalkDir(static, "static/js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		total += len(src)
		for _, line := range strings.Split(string(src), "\n") {
			if m := bad.FindString(line); m != "" && !strings.Contains(line, "http://www.w3.org/2000/svg") {
				t.Errorf("%s: %q in %q", p, m, strings.TrimSpace(line))
			}
		}
		if p != "static/js/app.js" && !strings.Contains(string(html), `<link rel="modulepreload" href="/ops/`+strings.TrimPrefix(p, "static/")+`">`) {
			t.Errorf("index.html does not preload %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("JavaScript: %d bytes before compression", total)
}
