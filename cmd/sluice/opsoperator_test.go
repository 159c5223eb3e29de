package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-custody/sluice/internal/testenv"
)

// TestOpsOperator bootstraps operators through the built binary, straight into the configured database,
// with the password on stdin (never in argv), and checks what it refuses and its exit codes.
func TestOpsOperator(t *testing.T) {
	st, dsn := testenv.Store(t)
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("database: {dsn: %q}\n", dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(devBin, append([]string{"ops", "operator"}, append(args, "--config", cfg)...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	}
	const pw = "first-admin-password-1"
	code, out := run(pw+"\n", "add", "root", "--role", "admin", "--password-stdin")
	if code != 0 || !strings.Contains(out, "operator root: role admin, enabled") {
		t.Fatalf("add: exit %d: %s", code, out)
	}
	var hash, role string
	var disabled bool
	if err := st.DB.QueryRow(`SELECT password_hash, role, disabled FROM operators WHERE username = 'root'`).Scan(&hash, &role, &disabled); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, pw) || role != "admin" || disabled {
		t.Errorf("row: %s %s %v", hash, role, disabled)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{pw + "\n", []string{"add", "root", "--role", "admin", "--password-stdin"}, 1, "exists"},
		{"short\n", []string{"add", "bob", "--role", "viewer", "--password-stdin"}, 1, "at least 12"},
		{pw + "\n", []string{"add", "bob", "--password-stdin"}, 2, "--role"},
		{pw + "\n", []string{"add", "bob", "--role", "king", "--password-stdin"}, 2, "not one of"},
		{"", []string{"add", "bob", "--role", "viewer"}, 2, "--password-stdin"},
		{"", []string{"disable", "nobody"}, 1, "no operator nobody"},
		{"", []string{"frobnicate", "x"}, 2, "unknown"},
	} {
		code, out := run(tc.stdin, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q: %s", tc.args, code, tc.code, tc.want, out)
		}
		if strings.Contains(out, pw) {
			t.Errorf("%v printed the password", tc.args)
		}
	}
	if code, out := run("", "disable", "root"); code != 0 || !strings.Contains(out, "disabled") {
		t.Errorf("disable: %d %s", code, out)
	}
	if code, out := run("second-admin-password\n", "reset", "root", "--password-stdin"); code != 0 || !strings.Contains(out, "role admin, enabled") {
		t.Errorf("reset: %d %s", code, out)
	}
	var n int
	if err := st.DB.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE kind = 'operator' AND operator LIKE 'cli:%'`).Scan(&n); err != nil || n != 3 {
		t.Errorf("%d operator changes audited (%v), want 3", n, err)
	}
}
