package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// apiWithdrawal is a withdrawal as the API shows it.
type apiWithdrawal struct {
	ID          string  `json:"id"`
	ExternalID  string  `json:"external_id"`
	Asset       string  `json:"asset"`
	To          string  `json:"to"`
	Amount      string  `json:"amount"`
	Status      string  `json:"status"`
	From        *string `json:"from"`
	Nonce       *uint64 `json:"nonce"`
	TxHash      *string `json:"tx_hash"`
	BlockNumber *uint64 `json:"block_number"`
	Error       *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func terminal(status string) bool {
	return status == "CONFIRMED" || status == "FAILED" || status == "CANCELED"
}

// Replay modes.
const (
	replayNone       = iota
	replaySequential // posted, then posted again once the first answer is in
	replayConcurrent // posted twice at the same moment
)

// spec is one withdrawal the run posts.
type spec struct {
	ext       string
	asset     string
	to        common.Address
	amount    *big.Int // base units
	amountStr string
	replay    int
	resend    bool // its withdrawal.requested is sent again once it is signed

	id string // from the first accepted answer
}

// httpClient is the exchange backend's HTTP client: one answer per request within 15 s.
var httpClient = http.Client{Timeout: 15 * time.Second}

// apiClient talks to every API instance in turn, as a load balancer in front of them would: each
// request (a retry included) goes to the next one, so a killed instance costs a retry, not a stall.
type apiClient struct {
	bases []string
	key   string
	hc    *http.Client
	next  atomic.Uint64
}

func (c *apiClient) base() string {
	return c.bases[(c.next.Add(1)-1)%uint64(len(c.bases))]
}

func (c *apiClient) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base()+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// postResult is the accepted answer to a POST, after any retries.
type postResult struct {
	code    int
	w       apiWithdrawal
	retried bool // an earlier attempt got no answer (or a 5xx/429): the withdrawal may have been made by it
	err     error
}

// post posts body until the API accepts it (201 or 200) or refuses it for good, riding out API kills
// the way an exchange backend does: the same external_id and body again.
func (c *apiClient) post(ctx context.Context, body []byte) postResult {
	var res postResult
	deadline := time.Now().Add(2 * time.Minute)
	pause := 100 * time.Millisecond
	for {
		code, b, err := c.do(ctx, http.MethodPost, "/v1/withdrawals", body)
		if err == nil && (code == http.StatusCreated || code == http.StatusOK) {
			res.code = code
			res.err = json.Unmarshal(b, &res.w)
			return res
		}
		if err == nil && code < 500 && code != http.StatusTooManyRequests {
			res.err = fmt.Errorf("POST /v1/withdrawals: %d %s", code, b)
			return res
		}
		res.retried = true
		if ctx.Err() != nil || time.Now().After(deadline) {
			res.err = fmt.Errorf("POST /v1/withdrawals: no answer until the deadline (last: %d %v)", code, err)
			return res
		}
		time.Sleep(pause)
		pause = min(pause*2, time.Second)
	}
}

// get fetches with retries over API restarts.
func (c *apiClient) get(ctx context.Context, path string, out any) error {
	deadline := time.Now().Add(time.Minute)
	for {
		code, b, err := c.do(ctx, http.MethodGet, path, nil)
		if err == nil && code == http.StatusOK {
			return json.Unmarshal(b, out)
		}
		if err == nil && code < 500 && code != http.StatusTooManyRequests {
			return fmt.Errorf("GET %s: %d %s", path, code, b)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("GET %s: no answer (last: %d %v)", path, code, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// listAll pages through every withdrawal of the client.
func (c *apiClient) listAll(ctx context.Context) ([]apiWithdrawal, error) {
	var all []apiWithdrawal
	cursor := ""
	for {
		path := "/v1/withdrawals?limit=500"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Withdrawals []apiWithdrawal `json:"withdrawals"`
			NextCursor  *string         `json:"next_cursor"`
		}
		if err := c.get(ctx, path, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Withdrawals...)
		if page.NextCursor == nil {
			return all, nil
		}
		cursor = *page.NextCursor
	}
}

// makeSpecs draws the withdrawals: half native POL, half USDT, fresh random recipients, random amounts,
// which are replayed and which requests are resent.
func (r *run) makeSpecs() []*spec {
	specs := make([]*spec, r.o.Withdrawals)
	for i := range specs {
		// A fresh database per run keeps these unique; from the seed, a replay posts the same ones.
		s := &spec{ext: fmt.Sprintf("chaos-%d-%04d", r.o.Seed, i)}
		var a [20]byte
		for j := range a {
			a[j] = byte(r.rng.UintN(256))
		}
		a[0] |= 0x10 // never a precompile
		s.to = common.Address(a)
		if r.rng.IntN(2) == 0 {
			s.asset = "POL"
			// 0.000000001 to 1 POL, in gwei steps.
			s.amount = new(big.Int).Mul(big.NewInt(r.rng.Int64N(1_000_000_000)+1), big.NewInt(1_000_000_000))
			s.amountStr = formatUnits(s.amount, 18)
		} else {
			s.asset = "USDT"
			// 0.000001 to 1000 USDT.
			s.amount = big.NewInt(r.rng.Int64N(1_000_000_000) + 1)
			s.amountStr = formatUnits(s.amount, 6)
		}
		if r.rng.Float64() < r.o.ReplayShare {
			s.replay = replaySequential + r.rng.IntN(2)
		}
		s.resend = r.rng.Float64() < r.o.ResendShare
		specs[i] = s
	}
	return specs
}

func (s *spec) body() []byte {
	b, _ := json.Marshal(map[string]string{"external_id": s.ext, "chain": "local", "asset": s.asset,
		"to": s.to.Hex(), "amount": s.amountStr})
	return b
}

// replayReport collects what replays showed.
type replayReport struct {
	mu         sync.Mutex
	sequential int
	concurrent int
	problems   []string // a replay that made or returned a different withdrawal, or a refused post
}

func (rr *replayReport) problem(format string, args ...any) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.problems = append(rr.problems, fmt.Sprintf(format, args...))
}

// postOne posts a spec according to its replay mode and checks what the API answered.
func (r *run) postOne(ctx context.Context, c *apiClient, s *spec, rr *replayReport) {
	body := s.body()
	check := func(what string, res postResult) bool {
		if res.err != nil {
			rr.problem("%s %s: %v", s.ext, what, res.err)
			return false
		}
		if res.code == http.StatusOK && !res.retried && what == "first post" {
			rr.problem("%s: first post answered 200 (a replay of what?)", s.ext)
		}
		return true
	}
	switch s.replay {
	case replayNone:
		res := c.post(ctx, body)
		if check("first post", res) {
			s.id = res.w.ID
		}
	case replaySequential:
		first := c.post(ctx, body)
		if !check("first post", first) {
			return
		}
		s.id = first.w.ID
		second := c.post(ctx, body)
		if !check("replay", second) {
			return
		}
		rr.mu.Lock()
		rr.sequential++
		rr.mu.Unlock()
		if second.code != http.StatusOK {
			rr.problem("%s: sequential replay answered %d, want 200", s.ext, second.code)
		}
		if second.w.ID != first.w.ID {
			rr.problem("%s: sequential replay returned withdrawal %s, the first post made %s", s.ext, second.w.ID, first.w.ID)
		}
	case replayConcurrent:
		var res [2]postResult
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range res {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i] = c.post(ctx, body)
			}()
		}
		close(start)
		wg.Wait()
		if !check("concurrent post A", res[0]) || !check("concurrent post B", res[1]) {
			return
		}
		s.id = res[0].w.ID
		rr.mu.Lock()
		rr.concurrent++
		rr.mu.Unlock()
		if res[0].w.ID != res[1].w.ID {
			rr.problem("%s: two concurrent posts made two withdrawals %s and %s", s.ext, res[0].w.ID, res[1].w.ID)
		}
		created := 0
		for _, x := range res {
			if x.code == http.StatusCreated {
				created++
			}
		}
		if created > 1 {
			rr.problem("%s: both concurrent posts answered 201", s.ext)
		}
		if created == 0 && !res[0].retried && !res[1].retried {
			rr.problem("%s: neither concurrent post answered 201", s.ext)
		}
	}
}

// postAll posts every spec at PostRate per second with a few concurrent posters.
func (r *run) postAll(ctx context.Context, c *apiClient, specs []*spec, rr *replayReport) {
	jobs := make(chan *spec)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range jobs {
				r.postOne(ctx, c, s, rr)
			}
		}()
	}
	every := time.Duration(float64(time.Second) / r.o.PostRate)
	t := time.NewTicker(every)
	defer t.Stop()
	for i, s := range specs {
		if i > 0 {
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- s
	}
	close(jobs)
	wg.Wait()
}

// plannedKill is one kill of a run's schedule, drawn from the seed before the run starts.
type plannedKill struct {
	At       time.Duration // after the first post
	Service  string
	Instance int           // which of the service's instances, from 0
	Down     time.Duration // how long the instance stays down before it is restarted
}

// killSchedule draws n kills about gap apart (jittered), each followed by a short pause before the
// restart. Services come in shuffled rounds of services, so with n at least len(services) every service
// is killed, and each about as often as the others; each kill hits one of the service's instances
// instances, drawn too, while the others keep working.
func killSchedule(seed uint64, n int, services []string, instances int, gap time.Duration) []plannedKill {
	rng := mrand.New(mrand.NewPCG(seed, streamKills))
	var (
		plan  []plannedKill
		order []string
		at    time.Duration
	)
	for range n {
		if len(order) == 0 {
			order = slices.Clone(services)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		at += gap/2 + time.Duration(rng.Int64N(int64(gap)+1))
		down := 200*time.Millisecond + time.Duration(rng.Int64N(int64(1800*time.Millisecond)))
		inst := 0
		if instances > 1 {
			inst = rng.IntN(instances)
		}
		plan = append(plan, plannedKill{At: at, Service: order[0], Instance: inst, Down: down})
		order = order[1:]
		at += down
	}
	return plan
}

func formatSchedule(plan []plannedKill, instances int) string {
	parts := make([]string, len(plan))
	for i, k := range plan {
		parts[i] = fmt.Sprintf("%s@%.1fs", instanceName(k.Service, k.Instance, instances), k.At.Seconds())
	}
	return strings.Join(parts, " ")
}

// killLoop carries out the plan, its times counted from start: SIGKILL, the planned pause, restart. A
// kill runs late rather than never: it waits for its turn after a slow restart, and for its service to
// be running again when it has exited on its own (the restart after a crash takes a second). It never
// draws another service, so the schedule is the seed's whatever the timing.
func (r *run) killLoop(ctx context.Context, plan []plannedKill, start time.Time, done chan<- struct{}) {
	defer close(done)
	for i, k := range plan {
		p := r.procs[k.Service][k.Instance]
		if !sleepCtx(ctx, time.Until(start.Add(k.At))) {
			return
		}
		pid, ok := p.kill()
		for waited := time.Duration(0); !ok && waited < 30*time.Second; waited += 100 * time.Millisecond {
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return
			}
			pid, ok = p.kill()
		}
		if !ok {
			r.logf("kill %d/%d: %s has not been running for 30 s; kill skipped", i+1, len(plan), p.name)
			continue
		}
		r.killsMu.Lock()
		r.kills[p.service]++
		r.killsMu.Unlock()
		r.logf("kill %d/%d: SIGKILL %s (pid %d, planned at %.1fs); restart in %s", i+1, len(plan), p.name, pid,
			k.At.Seconds(), k.Down.Round(time.Millisecond))
		if !sleepCtx(ctx, k.Down) {
			return
		}
		if err := p.start(); err != nil {
			r.logf("restart %s: %v", p.name, err)
		}
	}
}

// sleepCtx sleeps d (nothing when d ≤ 0) and reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitTerminal polls the API until every posted withdrawal is CONFIRMED, FAILED or CANCELED, until the
// deadline, or until no withdrawal has changed status for the stall period (nothing in Sluice waits that
// long: the longest timer is the 60 s nonce lease); it returns the last view of every withdrawal by id.
func (r *run) waitTerminal(ctx context.Context, c *apiClient, specs []*spec, deadline time.Time) (map[string]apiWithdrawal, error) {
	lastReport, lastChange := time.Time{}, time.Now()
	var prev map[string]string
	type point struct {
		at   time.Time
		open int
	}
	var history []point
	for {
		all, err := c.listAll(ctx)
		if err != nil {
			return nil, err
		}
		byID := make(map[string]apiWithdrawal, len(all))
		statuses := make(map[string]string, len(all))
		for _, w := range all {
			byID[w.ID] = w
			statuses[w.ID] = w.Status
		}
		if !maps.Equal(prev, statuses) {
			prev, lastChange = statuses, time.Now()
		}
		counts := map[string]int{}
		open := 0
		for _, s := range specs {
			st := "MISSING"
			if w, ok := byID[s.id]; ok {
				st = w.Status
			}
			counts[st]++
			if !terminal(st) {
				open++
			}
		}
		history = append(history, point{time.Now(), open})
		stalled := r.o.Stall > 0 && time.Since(lastChange) >= r.o.Stall
		if open == 0 || stalled || time.Now().After(deadline) || ctx.Err() != nil {
			r.logf("withdrawals: %s", FormatCounts(counts, nil))
			switch {
			case open == 0:
			case stalled:
				r.stalled = true
				r.logf("stalled: no withdrawal changed status for %s; %d are not terminal", r.o.Stall, open)
			default:
				for _, p := range history {
					if time.Since(p.at) <= 30*time.Second && p.open > open {
						r.progressing = true // still moving: the timeout, not the system, ended the wait
						break
					}
				}
			}
			return byID, nil
		}
		if time.Since(lastReport) >= 10*time.Second {
			r.logf("waiting for %d withdrawals: %s", open, FormatCounts(counts, nil))
			lastReport = time.Now()
		}
		time.Sleep(2 * time.Second)
	}
}

// formatUnits writes v base units of a decimals-decimal asset as a decimal string without trailing zeros.
func formatUnits(v *big.Int, decimals int) string {
	s := v.String()
	if decimals == 0 {
		return s
	}
	if len(s) <= decimals {
		s = strings.Repeat("0", decimals-len(s)+1) + s
	}
	i, f := s[:len(s)-decimals], strings.TrimRight(s[len(s)-decimals:], "0")
	if f == "" {
		return i
	}
	return i + "." + f
}
