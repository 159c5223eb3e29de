package deploy_test

import (
	"bufio"
	"context"
	"debug/elf"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/devchain"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// dockerStage is one FROM … stage of the Dockerfile.
type dockerStage struct {
	from  string
	lines []string // instructions after FROM, continuation lines joined
}

func dockerStages(t testing.TB) []dockerStage {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []dockerStage
	var cont string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cont += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line, cont = cont+line, ""
		word, rest, _ := strings.Cut(line, " ")
		switch {
		case strings.EqualFold(word, "FROM"):
			stages = append(stages, dockerStage{from: strings.Fields(rest)[0]})
		case len(stages) == 0:
			t.Fatalf("Dockerfile: %q before the first FROM", line)
		default:
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, strings.ToUpper(word)+" "+rest)
		}
	}
	return stages
}

// dockerBuildLine is the Dockerfile's `go build` of the binary, its environment and arguments.
func dockerBuildLine(t testing.TB, stages []dockerStage) (env, args []string) {
	t.Helper()
	for _, st := range stages {
		for _, l := range st.lines {
			cmd, ok := strings.CutPrefix(l, "RUN ")
			if !ok || !strings.Contains(cmd, "go build") {
				continue
			}
			fields := strings.Fields(cmd)
			for len(fields) > 0 && strings.Contains(fields[0], "=") {
				env, fields = append(env, fields[0]), fields[1:]
			}
			if len(fields) < 2 || fields[0] != "go" || fields[1] != "build" {
				t.Fatalf("Dockerfile build line is not `[VAR=value…] go build …`: %s", cmd)
			}
			return env, fields[2:]
		}
	}
	t.Fatal("the Dockerfile has no RUN … go build")
	return nil, nil
}

// TestDockerfile checks what can be checked without Docker: a multi-stage build whose final stage is a
// distroless static (or scratch) image running as a non-root user with the sluice binary as entrypoint;
// and that the Dockerfile's own build line, run here, yields a static binary: cgo off, no ELF interpreter,
// no shared library.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	stages := dockerStages(t)
	if len(stages) < 2 {
		t.Fatalf("%d stage(s): want a build stage and a runtime stage", len(stages))
	}
	final := stages[len(stages)-1]
	if final.from != "scratch" && !strings.HasPrefix(final.from, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s: want scratch or gcr.io/distroless/static", final.from)
	}
	user, entry := "", ""
	for _, l := range final.lines {
		if u, ok := strings.CutPrefix(l, "USER "); ok {
			user = strings.TrimSpace(u)
		}
		if e, ok := strings.CutPrefix(l, "ENTRYPOINT "); ok {
			entry = e
		}
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "0" || name == "root" {
		t.Errorf("final stage USER %q: must name a non-root user", user)
	}
	if !strings.Contains(entry, "sluice") {
		t.Errorf("final stage ENTRYPOINT %q does not run sluice", entry)
	}

	env, args := dockerBuildLine(t, stages)
	if !contains(env, "CGO_ENABLED=0") {
		t.Errorf("the Dockerfile builds with %v: want CGO_ENABLED=0", env)
	}
	bin := buildStatic(t, env, args)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v (%v)", libs, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// buildStatic runs the Dockerfile's go build here, its output redirected into a directory any user can
// read, and returns the binary's path.
func buildStatic(t testing.TB, env, args []string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sluice-static-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sluice")
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = bin
		}
	}
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v (%v): %v\n%s", args, env, err, out)
	}
	return bin
}

// TestAllStartsFromEnvironmentOnly runs the static binary as the image does: a non-root user (uid 65532,
// distroless' nonroot, when the test runs as root), no configuration file, an empty HOME and working
// directory, everything from environment variables (the chains from SLUICE_CONFIG_YAML). `sluice
// migrate` must succeed, `sluice all` must become ready and serve its metrics, and SIGTERM must stop it
// cleanly.
func TestAllStartsFromEnvironmentOnly(t *testing.T) {
	t.Parallel()
	env, args := dockerBuildLine(t, dockerStages(t))
	bin := buildStatic(t, env, args)
	ch, err := devchain.Start(devchain.Options{Addr: "127.0.0.1:0", BlockInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	home, err := os.MkdirTemp("", "sluice-home-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	if err := os.Chmod(home, 0o777); err != nil {
		t.Fatal(err)
	}
	apiAddr := testenv.FreeAddr(t)
	vars := []string{
		"HOME=" + home, "PATH=/nonexistent",
		"SLUICE_DATABASE_DSN=" + testenv.MySQLDSN(t),
		"SLUICE_REDIS_ADDR=" + testenv.RedisAddr(t),
		"SLUICE_API_LISTEN=" + apiAddr,
		"SLUICE_API_KEY=sk_test_env_only_0123456789",
		"SLUICE_API_ADMIN_LISTEN=" + testenv.FreeAddr(t),
		"SLUICE_ADMIN_JWT_KEY=test-admin-jwt-key-0123456789abcdef",
		"SLUICE_KEYSTORE_DIR=" + home,
		"SLUICE_KEYSTORE_PASSWORD=not-used-no-keys-here",
		config.EnvConfigYAML + "=" + fmt.Sprintf("chains:\n  - {name: local, chain_id: %s, rpc: [%q], confirmations: 3, assets: [{symbol: ETH, decimals: 18}]}\n", ch.ChainID, ch.URL),
	}
	run := func(ctx context.Context, sub string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, sub)
		cmd.Dir, cmd.Env = home, vars
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
		}
		return cmd
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := run(ctx, "migrate").CombinedOutput(); err != nil {
		t.Fatalf("sluice migrate from the environment: %v\n%s", err, out)
	}
	cmd := run(ctx, "all")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("sluice all logs:\n%s", logs.String())
		}
	}()
	testenv.WaitReady(t, "http://"+apiAddr, exited)
	resp, err := http.Get("http://" + apiAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := new(strings.Builder)
	_, _ = bufio.NewReader(resp.Body).WriteTo(body)
	resp.Body.Close()
	for _, m := range []string{"sluice_api_", "process_start_time_seconds", "go_goroutines"} {
		if !strings.Contains(body.String(), m) {
			t.Errorf("/metrics of sluice all lacks %s…", m)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("sluice all after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sluice all did not stop within 30 s of SIGTERM")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the logs")
	}
}
