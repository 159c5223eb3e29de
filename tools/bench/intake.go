package main

import (
	"context"
	"crypto/ecdsa"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/client"
	"github.com/sluice-custody/sluice/internal/devchain"
	"github.com/sluice-custody/sluice/internal/devmode"
	"github.com/sluice-custody/sluice/internal/policy"
	"github.com/sluice-custody/sluice/internal/webhook"
)

// intakeVariant is what the API checks while its intake is measured.
type intakeVariant string

const (
	// intakePlain: no policy engine at all (app.WithoutPolicy), the baseline the target is set against.
	intakePlain intakeVariant = "plain"
	// intakeDefault: the API as `sluice api` runs it with no limits configured: the recipient checks run
	// (eth_getCode for native, the token's blacklist for ERC-20, the look-alike query), no webhook endpoint.
	intakeDefault intakeVariant = "default"
	// intakePolicyWebhooks: the bench client has limits on both assets (per-withdrawal maximum, approval
	// and two-person thresholds), a destination denylist entry, and a webhook endpoint on a local
	// receiver; every heldEvery-th request is above the approval threshold, so it is held and its
	// withdrawal.awaiting_approval event is delivered during the run.
	intakePolicyWebhooks intakeVariant = "policy+webhooks"
	// intakePolicyDaily: the same and a rolling 24 h total on both assets, which serializes the creates
	// of one client and asset (from the policy row's lock to the commit) by design.
	intakePolicyDaily intakeVariant = "policy+daily+webhooks"
)

const (
	heldEvery  = 50
	heldAmount = "1000"
)

var (
	intakeRuns     = flag.Int("intake-runs", 3, "measure each intake variant this many times, in turn, and report the medians (one run moves by a few per cent)")
	intakeVariantF = flag.String("intake-variants", "plain,policy+webhooks,policy+daily+webhooks", "the intake variants measured besides the default one (plain, default, policy+webhooks, policy+daily+webhooks)")
)

// intakeResult is the medians of the intake variants' runs.
type intakeResult struct {
	med             map[intakeVariant]apiResult
	runs            map[intakeVariant][]float64
	n               int
	held, delivered int
}

// intakeVariants measures each of -intake-variants *intakeRuns times, in turn, so that a change of the
// machine's load touches them alike.
func intakeVariants(ctx context.Context, log *slog.Logger, ch *devchain.Chain, funder *ecdsa.PrivateKey, dsn, redisAddr string) (intakeResult, error) {
	out := intakeResult{med: map[intakeVariant]apiResult{}, runs: map[intakeVariant][]float64{}, n: max(*intakeRuns, 1)}
	all := map[intakeVariant][]apiResult{}
	var order []intakeVariant
	for _, v := range strings.Split(*intakeVariantF, ",") {
		switch v := intakeVariant(strings.TrimSpace(v)); v {
		case intakePlain, intakeDefault, intakePolicyWebhooks, intakePolicyDaily:
			order = append(order, v)
		case "":
		default:
			return out, fmt.Errorf("-intake-variants: unknown variant %q", v)
		}
	}
	for range out.n {
		for _, v := range order {
			r, err := apiBench(ctx, log, ch, funder, dsn, redisAddr, 1, v)
			if err != nil {
				return out, fmt.Errorf("api, %s: %w", v, err)
			}
			printAPI(r)
			if r.held > 0 {
				fmt.Printf("  webhooks: %d withdrawals held, %d withdrawal.awaiting_approval events received and verified\n", r.held, r.delivered)
				out.held += r.held
				out.delivered += r.delivered
			}
			all[v] = append(all[v], r)
			out.runs[v] = append(out.runs[v], round1(r.perSec))
		}
	}
	for v, rs := range all {
		out.med[v] = median(rs)
		fmt.Printf("intake %s: median %.0f req/s (runs %v), CPU per request of that run %.0f µs (%.0f here + %.0f database)\n", v, out.med[v].perSec,
			out.runs[v], out.med[v].cpuPerReq.self+out.med[v].cpuPerReq.db, out.med[v].cpuPerReq.self, out.med[v].cpuPerReq.db)
	}
	for _, v := range []intakeVariant{intakeDefault, intakePolicyWebhooks, intakePolicyDaily} {
		if out.has(intakePlain, v) {
			fmt.Printf("intake %s: %.1f%% below plain (medians)\n", v, out.belowPct(v))
		}
	}
	return out, nil
}

func (r intakeResult) has(vs ...intakeVariant) bool {
	for _, v := range vs {
		if _, ok := r.med[v]; !ok {
			return false
		}
	}
	return true
}

func median(rs []apiResult) apiResult {
	s := append([]apiResult(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].perSec < s[j].perSec })
	return s[len(s)/2]
}

func (r intakeResult) belowPct(v intakeVariant) float64 {
	return 100 * (1 - r.med[v].perSec/r.med[intakePlain].perSec)
}

// addTo adds the intake fields to the RESULT line. They are kept together here, apart from the other
// fields, so that other measurements can join the line without touching these.
func (r intakeResult) addTo(res map[string]any) {
	names := map[intakeVariant]string{intakePlain: "api_plain", intakeDefault: "api_default", intakePolicyWebhooks: "api_policy_webhooks",
		intakePolicyDaily: "api_policy_daily_webhooks"}
	for v, m := range r.med {
		res[names[v]+"_req_per_sec"] = round1(m.perSec)
		res[names[v]+"_p50_ms"] = round1(m.p50)
		res[names[v]+"_p99_ms"] = round1(m.p99)
		res[names[v]+"_cpu_us_per_req"] = round(m.cpuPerReq.self + m.cpuPerReq.db)
		if v != intakePlain && r.has(intakePlain) {
			res[names[v]+"_below_plain_pct"] = round1(r.belowPct(v))
		}
	}
	if r.held > 0 {
		res["api_webhooks_held"] = r.held
		res["api_webhooks_delivered"] = r.delivered
	}
	res["intake_runs"] = r.n
}

// policyAndWebhooks gives the bench client limits on both assets and a webhook endpoint on a local
// receiver, and lets the API deliver to it (a loopback address).
func policyAndWebhooks(ctx context.Context, st *devmode.Stack, daily bool) (*receiver, error) {
	st.Config.Webhooks.AllowPrivate = true
	client, err := st.App.Store.ClientByKey(ctx, st.APIKey)
	if err != nil {
		return nil, err
	}
	for _, a := range st.Config.Chains[0].Assets {
		unit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(a.Decimals)), nil)
		units := func(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), unit) }
		// The heldAmount requests pass the maximum and wait for one approver; the 24 h total is far above
		// the whole run but is consumed (and so locked) on every create, as in production.
		l := policy.Limits{ClientID: client.ID, Chain: st.Config.Chains[0].Name, Asset: a.Symbol,
			MaxAmount: units(10_000), ApprovalThreshold: units(100), TwoPersonThreshold: units(5_000)}
		if daily {
			l.DailyLimit = units(1_000_000_000)
		}
		if err := policy.SetLimits(ctx, st.App.Store.DB, l); err != nil {
			return nil, err
		}
	}
	if err := policy.ListAddress(ctx, st.App.Store.DB, client.ID, "deny", common.HexToAddress("0x000000000000000000000000000000000000dEaD"), "bench"); err != nil {
		return nil, err
	}
	recv, err := newReceiver()
	if err != nil {
		return nil, err
	}
	if _, err := st.App.Store.AddWebhookEndpoint(ctx, client.ID, recv.url, recv.secret); err != nil {
		recv.Close()
		return nil, err
	}
	return recv, nil
}

// receiver is an exchange's webhook endpoint: it verifies each delivery's signature and counts the
// distinct event ids.
type receiver struct {
	srv    *http.Server
	url    string
	secret string
	mu     sync.Mutex
	events map[string]bool
	bad    int
}

func newReceiver() (*receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + l.Addr().String() + "/hooks", secret: "whsec_bench_receiver", events: map[string]bool{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ok := client.VerifySignature(req.Header.Get(webhook.HeaderSignature), body, r.secret, 5*time.Minute, time.Now()) == nil
		r.mu.Lock()
		if ok {
			r.events[req.Header.Get(webhook.HeaderEventID)] = true
		} else {
			r.bad++
		}
		r.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

// wait returns how many distinct events arrived once want have, or when timeout passes.
func (r *receiver) wait(want int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		n, bad := len(r.events), r.bad
		r.mu.Unlock()
		if bad > 0 {
			return n, fmt.Errorf("webhook receiver: %d deliveries with a bad signature", bad)
		}
		if n >= want || time.Now().After(deadline) {
			return n, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *receiver) Close() { _ = r.srv.Close() }

// cpuUse is CPU time in µs: this process's and the database server's (SLUICE_BENCH_DB_PID; run.sh
// sets it). On a machine shared with other work, CPU per request moves much less than requests per
// second, so it is the figure to compare two builds by.
type cpuUse struct{ self, db float64 }

func cpuNow() cpuUse {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	u := cpuUse{self: float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3}
	if pid := os.Getenv("SLUICE_BENCH_DB_PID"); pid != "" {
		if b, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
			// Fields 14 and 15 (utime, stime, in clock ticks) follow the parenthesised command name.
			if i := strings.LastIndexByte(string(b), ')'); i > 0 {
				f := strings.Fields(string(b)[i+1:])
				if len(f) > 13 {
					ut, _ := strconv.ParseFloat(f[11], 64)
					st, _ := strconv.ParseFloat(f[12], 64)
					u.db = (ut + st) * 1e6 / 100 // USER_HZ is 100 on Linux
				}
			}
		}
	}
	return u
}

func (u cpuUse) sub(o cpuUse) cpuUse { return cpuUse{self: u.self - o.self, db: u.db - o.db} }

func (u cpuUse) perReq(n int) cpuUse {
	if n == 0 {
		return cpuUse{}
	}
	return cpuUse{self: u.self / float64(n), db: u.db / float64(n)}
}
