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
	"sort"
	"strings"
	"sync"
	"time"

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
	// and two-person thresholds, a rolling 24 h total) and a webhook endpoint on a local receiver;
	// every heldEvery-th request is above the approval threshold, so it is held and its
	// withdrawal.awaiting_approval event is delivered during the run.
	intakePolicyWebhooks intakeVariant = "policy+webhooks"
)

const (
	heldEvery  = 50
	heldAmount = "1000"
)

var (
	intakeRuns     = flag.Int("intake-runs", 1, "measure each intake variant this many times, in turn, and report the medians")
	intakeVariantF = flag.String("intake-variants", "plain,policy+webhooks", "the intake variants measured besides the default one (plain, default, policy+webhooks)")
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
		case intakePlain, intakeDefault, intakePolicyWebhooks:
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
			if v == intakePolicyWebhooks {
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
		fmt.Printf("intake %s: median %.0f req/s (runs %v)\n", v, out.med[v].perSec, out.runs[v])
	}
	if out.has(intakePlain, intakePolicyWebhooks) {
		fmt.Printf("intake with policy+webhooks: %.1f%% below plain (medians)\n", out.belowPct())
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

func (r intakeResult) belowPct() float64 {
	return 100 * (1 - r.med[intakePolicyWebhooks].perSec/r.med[intakePlain].perSec)
}

// addTo adds the intake fields to the RESULT line. They are kept together here, apart from the other
// fields, so that other measurements can join the line without touching these.
func (r intakeResult) addTo(res map[string]any) {
	names := map[intakeVariant]string{intakePlain: "api_plain", intakeDefault: "api_default", intakePolicyWebhooks: "api_policy_webhooks"}
	for v, m := range r.med {
		res[names[v]+"_req_per_sec"] = round1(m.perSec)
		res[names[v]+"_p50_ms"] = round1(m.p50)
		res[names[v]+"_p99_ms"] = round1(m.p99)
	}
	if r.has(intakePolicyWebhooks) {
		res["api_policy_webhooks_held"] = r.held
		res["api_policy_webhooks_delivered"] = r.delivered
	}
	if r.has(intakePlain, intakePolicyWebhooks) {
		res["api_policy_webhooks_below_plain_pct"] = round1(r.belowPct())
	}
	res["intake_runs"] = r.n
}

// policyAndWebhooks gives the bench client limits on both assets and a webhook endpoint on a local
// receiver, and lets the API deliver to it (a loopback address).
func policyAndWebhooks(ctx context.Context, st *devmode.Stack) (*receiver, error) {
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
		if err := policy.SetLimits(ctx, st.App.Store.DB, policy.Limits{ClientID: client.ID, Chain: st.Config.Chains[0].Name, Asset: a.Symbol,
			MaxAmount: units(10_000), ApprovalThreshold: units(100), TwoPersonThreshold: units(5_000), DailyLimit: units(1_000_000_000)}); err != nil {
			return nil, err
		}
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
