package chaos

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one instance of a Sluice service running as its own OS process, restarted after every kill.
type proc struct {
	name    string // the instance: "signer-2"
	service string // what it runs: "signer"
	bin     string
	args    []string
	env     []string
	logPath string
	readyz  string // URL of its /readyz
	metrics string // URL of its /metrics
	logf    func(format string, args ...any)

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has been reaped
	expected bool          // the current process is being killed or stopped by us
	stopping bool          // the run is over: do not restart after an unexpected exit
	starts   int
	crashes  []string // exits nobody asked for
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return nil
	}
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is already running (pid %d)", p.name, p.cmd.Process.Pid)
		}
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	f.Close() // the child has its own copy
	p.cmd, p.done, p.expected = cmd, make(chan struct{}), false
	p.starts++
	done := p.done
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		expected, stopping := p.expected, p.stopping
		if !expected {
			p.crashes = append(p.crashes, fmt.Sprintf("%s pid %d exited on its own: %v", p.name, cmd.Process.Pid, err))
		}
		close(done)
		p.mu.Unlock()
		if !expected && !stopping {
			p.logf("%s (pid %d) exited on its own (%v); restarting it in 1s", p.name, cmd.Process.Pid, err)
			time.Sleep(time.Second)
			if err := p.start(); err != nil {
				p.logf("restart %s: %v", p.name, err)
			}
		}
	}()
	return nil
}

// kill SIGKILLs the running process and waits until it is reaped.
func (p *proc) kill() (pid int, ok bool) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd == nil {
		p.mu.Unlock()
		return 0, false
	}
	select {
	case <-done:
		p.mu.Unlock()
		return 0, false
	default:
	}
	p.expected = true
	_ = cmd.Process.Signal(syscall.SIGKILL)
	p.mu.Unlock()
	<-done
	return cmd.Process.Pid, true
}

// stop asks the process to shut down (SIGTERM) and SIGKILLs it after grace; no restart follows.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	cmd, done := p.cmd, p.done
	if cmd == nil {
		p.mu.Unlock()
		return
	}
	select {
	case <-done:
		p.mu.Unlock()
		return
	default:
	}
	p.expected = true
	_ = cmd.Process.Signal(syscall.SIGTERM)
	p.mu.Unlock()
	select {
	case <-done:
	case <-time.After(grace):
		p.logf("%s did not stop within %s of SIGTERM; killing it", p.name, grace)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitReady polls /readyz until it answers 200. The check goes through the fault proxy (the services
// ask the node), so single failures are expected.
func (p *proc) waitReady(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	c := &http.Client{Timeout: 4 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.readyz, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %w", p.name, p.readyz, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
