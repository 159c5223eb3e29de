package api

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/policy"
	"github.com/sluice-custody/sluice/internal/store"
)

const (
	approverKey1 = "sk_test_alice_approver_one_0123456789abcdef"
	approverKey2 = "sk_test_alice_approver_two_0123456789abcdef"
	readerKey    = "sk_test_alice_reader_0123456789abcdefabcdef"
)

// newPolicyEnv is newEnv with the policy engine on (no recipient checks: those need a chain, see
// recipients_test.go) and alice's extra keys: two approvers and a read-only key.
func newPolicyEnv(t *testing.T, tweak ...func(*Deps)) *env {
	t.Helper()
	var e *env
	e = newEnv(t, append([]func(*Deps){func(d *Deps) {
		eng, err := policy.New(policy.Deps{Store: d.Store}, nil, policy.NopMetrics())
		if err != nil {
			t.Fatal(err)
		}
		d.Policy = eng
	}}, tweak...)...)
	ctx := context.Background()
	for _, k := range []struct {
		name, key string
		scopes    []string
	}{
		{"approver-one", approverKey1, []string{store.ScopeWithdrawalsApprove, store.ScopeWithdrawalsRead}},
		{"approver-two", approverKey2, []string{store.ScopeWithdrawalsApprove}},
		{"reader", readerKey, []string{store.ScopeWithdrawalsRead}},
	} {
		if err := e.st.AddAPIKey(ctx, e.alice.ID, k.name, k.key, k.scopes, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func usdt(n int64) *big.Int { return big.NewInt(n) } // base units (6 decimals)

func (e *env) setLimits(l policy.Limits) {
	e.t.Helper()
	if l.ClientID == 0 {
		l.ClientID = e.alice.ID
	}
	if l.Chain == "" {
		l.Chain = "local"
	}
	if l.Asset == "" {
		l.Asset = "USDT"
	}
	if err := policy.SetLimits(context.Background(), e.st.DB, l); err != nil {
		e.t.Fatal(err)
	}
}

// expectBreach checks r is a 422 of code naming field and rule.
func expectBreach(t *testing.T, r resp, code, field string, rule policy.Rule) {
	t.Helper()
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422: %s", r.status, r.raw)
	}
	c, f := r.errorOf(t)
	if c != code || f != field {
		t.Fatalf("error %s/%v, want %s/%s: %s", c, f, code, field, r.raw)
	}
	if !strings.Contains(string(r.raw), "rule "+string(rule)) {
		t.Fatalf("message does not name rule %s: %s", rule, r.raw)
	}
}

func TestPolicyBoundaries(t *testing.T) {
	e := newPolicyEnv(t)
	e.setLimits(policy.Limits{MaxAmount: usdt(10_000_000), DailyLimit: usdt(25_000_000)})

	// Per-withdrawal maximum: exactly 10 USDT passes, 10.000001 fails.
	if r := e.post(aliceKey, body("max-at", "amount", "10")); r.status != http.StatusCreated {
		t.Fatalf("at the maximum: %d %s", r.status, r.raw)
	}
	expectBreach(t, e.post(aliceKey, body("max-over", "amount", "10.000001")), CodeLimitExceeded, "amount", policy.RuleMaxAmount)

	// Daily total: 10 used; 10 more brings it to 20; then 5 is exactly the limit and 0.000001 more fails.
	if r := e.post(aliceKey, body("d2", "amount", "10")); r.status != http.StatusCreated {
		t.Fatalf("second: %d %s", r.status, r.raw)
	}
	expectBreach(t, e.post(aliceKey, body("d-over", "amount", "5.000001")), CodeLimitExceeded, "amount", policy.RuleDailyTotal)
	if r := e.post(aliceKey, body("d-at", "amount", "5")); r.status != http.StatusCreated {
		t.Fatalf("exactly at the daily limit: %d %s", r.status, r.raw)
	}
	expectBreach(t, e.post(aliceKey, body("d-over2", "amount", "0.000001")), CodeLimitExceeded, "amount", policy.RuleDailyTotal)

	// Another asset and another client have their own (no) limits.
	if r := e.post(aliceKey, body("pol", "asset", "POL", "amount", "1000")); r.status != http.StatusCreated {
		t.Fatalf("other asset: %d %s", r.status, r.raw)
	}
	if r := e.post(bobKey, body("bob", "amount", "100")); r.status != http.StatusCreated {
		t.Fatalf("other client: %d %s", r.status, r.raw)
	}

	// A replay of an accepted withdrawal is still 200, though the limit is used up.
	if r := e.post(aliceKey, body("d-at", "amount", "5")); r.status != http.StatusOK {
		t.Fatalf("replay at a full limit: %d %s", r.status, r.raw)
	}

	// Canceling releases the amount: 10 becomes available again.
	var id string
	if err := e.st.DB.QueryRow(`SELECT id FROM withdrawals WHERE external_id = 'd2'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if r := e.do(http.MethodPost, "/v1/withdrawals/"+id+"/cancel", aliceKey, nil); r.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.status, r.raw)
	}
	if r := e.post(aliceKey, body("after-cancel", "amount", "10")); r.status != http.StatusCreated {
		t.Fatalf("after cancel: %d %s", r.status, r.raw)
	}
	// And a failure releases too (the signer's or monitor's transition to FAILED).
	if err := e.st.InTx(context.Background(), func(tx *sql.Tx) error {
		return e.st.Transition(context.Background(), tx, idOf(t, e, "after-cancel"), store.Pending, store.Failed, "test", store.ActorSigner, store.Change{})
	}); err != nil {
		t.Fatal(err)
	}
	if r := e.post(aliceKey, body("after-fail", "amount", "10")); r.status != http.StatusCreated {
		t.Fatalf("after fail: %d %s", r.status, r.raw)
	}
	expectBreach(t, e.post(aliceKey, body("full", "amount", "0.000001")), CodeLimitExceeded, "amount", policy.RuleDailyTotal)
}

func idOf(t *testing.T, e *env, ext string) string {
	t.Helper()
	var id string
	if err := e.st.DB.QueryRow(`SELECT id FROM withdrawals WHERE external_id = ?`, ext).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestPolicyConcurrentDailyTotal(t *testing.T) {
	e := newPolicyEnv(t)
	// 50 posts of 1 USDT against a 24 h total of 20 USDT: exactly 20 are accepted.
	e.setLimits(policy.Limits{DailyLimit: usdt(20_000_000)})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.post(aliceKey, body(fmt.Sprintf("c-%02d", i), "amount", "1"))
			if r.status == http.StatusUnprocessableEntity {
				if c, _ := r.errorOf(t); c != CodeLimitExceeded {
					t.Errorf("422 %s", r.raw)
				}
			}
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[http.StatusCreated] != 20 || statuses[http.StatusUnprocessableEntity] != 30 || len(statuses) != 2 {
		t.Fatalf("statuses %v, want 20×201 and 30×422", statuses)
	}
	var sum string
	if err := e.st.DB.QueryRow(`SELECT SUM(CAST(amount AS DECIMAL(65,0))) FROM withdrawals`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum != "20000000" {
		t.Fatalf("accepted total %s, want 20000000", sum)
	}
	if n := e.count("test_outbox"); n != 20 {
		t.Fatalf("%d messages, want 20", n)
	}
}

func TestPolicyVelocity(t *testing.T) {
	e := newPolicyEnv(t)
	three := 3
	e.setLimits(policy.Limits{PerMinute: &three})
	for i := 0; i < 3; i++ {
		if r := e.post(aliceKey, body(fmt.Sprintf("v%d", i))); r.status != http.StatusCreated {
			t.Fatalf("post %d: %d %s", i, r.status, r.raw)
		}
	}
	expectBreach(t, e.post(aliceKey, body("v3")), CodeLimitExceeded, "amount", policy.RuleVelocity)
}

func TestPolicyLists(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	bad := common.HexToAddress("0x00000000000000000000000000000000DeaDBeef")
	if err := policy.ListAddress(ctx, e.st.DB, policy.GlobalList, "deny", bad, "sanctioned"); err != nil {
		t.Fatal(err)
	}
	expectBreach(t, e.post(aliceKey, body("g", "to", bad.Hex())), CodeLimitExceeded, "to", policy.RuleDenylist)
	expectBreach(t, e.post(bobKey, body("g", "to", bad.Hex())), CodeLimitExceeded, "to", policy.RuleDenylist)

	mine := common.HexToAddress("0x1111111111111111111111111111111111111111")
	if err := policy.ListAddress(ctx, e.st.DB, e.bob.ID, "deny", mine, ""); err != nil {
		t.Fatal(err)
	}
	expectBreach(t, e.post(bobKey, body("b", "to", mine.Hex())), CodeLimitExceeded, "to", policy.RuleDenylist)
	if r := e.post(aliceKey, body("a", "to", mine.Hex())); r.status != http.StatusCreated {
		t.Fatalf("bob's denylist applied to alice: %d %s", r.status, r.raw)
	}

	// An allowlist: only its addresses.
	if err := policy.ListAddress(ctx, e.st.DB, e.alice.ID, "allow", mine, ""); err != nil {
		t.Fatal(err)
	}
	expectBreach(t, e.post(aliceKey, body("a2")), CodeLimitExceeded, "to", policy.RuleAllowlist)
	if r := e.post(aliceKey, body("a3", "to", mine.Hex())); r.status != http.StatusCreated {
		t.Fatalf("allowed: %d %s", r.status, r.raw)
	}
	if err := policy.ListAddress(ctx, e.st.DB, policy.GlobalList, "allow", mine, ""); err == nil {
		t.Fatal("a global allowlist was accepted")
	}
}

func TestApprovalFlow(t *testing.T) {
	e := newPolicyEnv(t)
	e.setLimits(policy.Limits{ApprovalThreshold: usdt(100_000_000), TwoPersonThreshold: usdt(1_000_000_000)})

	// At the threshold: straight to PENDING.
	if r := e.post(aliceKey, body("small", "amount", "100")); r.status != http.StatusCreated || r.json(t)["status"] != "PENDING" {
		t.Fatalf("at the threshold: %d %s", r.status, r.raw)
	}
	msgs := e.count("test_outbox")

	// Above it: AWAITING_APPROVAL, no message.
	r := e.post(aliceKey, body("one", "amount", "100.000001"))
	if r.status != http.StatusCreated || r.json(t)["status"] != "AWAITING_APPROVAL" {
		t.Fatalf("above the threshold: %d %s", r.status, r.raw)
	}
	id := r.json(t)["id"].(string)
	if n := e.count("test_outbox"); n != msgs {
		t.Fatalf("a held withdrawal sent a message")
	}
	// The creating key cannot approve; a read-only key neither; bob's approver cannot see it.
	if r := e.do(http.MethodPost, "/v1/withdrawals/"+id+"/approve", aliceKey, nil); r.status != http.StatusForbidden {
		t.Fatalf("write key approving: %d %s", r.status, r.raw)
	}
	if r := e.do(http.MethodPost, "/v1/withdrawals/"+id+"/approve", readerKey, nil); r.status != http.StatusForbidden {
		t.Fatalf("read key approving: %d %s", r.status, r.raw)
	}
	if r := e.do(http.MethodPost, "/v1/withdrawals", readerKey, []byte(`{}`)); r.status != http.StatusForbidden {
		t.Fatalf("read key creating: %d %s", r.status, r.raw)
	}
	r = e.do(http.MethodPost, "/v1/withdrawals/"+id+"/approve", approverKey1, nil)
	if r.status != http.StatusOK || r.json(t)["status"] != "PENDING" {
		t.Fatalf("approve: %d %s", r.status, r.raw)
	}
	if n := e.count("test_outbox"); n != msgs+1 {
		t.Fatalf("approval sent %d messages, want 1", n-msgs)
	}
	if r := e.do(http.MethodPost, "/v1/withdrawals/"+id+"/approve", approverKey2, nil); r.status != http.StatusConflict {
		t.Fatalf("approving a PENDING withdrawal: %d %s", r.status, r.raw)
	}

	// Above the second threshold: two distinct approvers.
	r = e.post(aliceKey, body("two", "amount", "1000.000001"))
	id = r.json(t)["id"].(string)
	if r := e.do(http.MethodPost, "/v1/withdrawals/"+id+"/approve", approverKey1, nil); r.status != http.StatusOK || r.json(t)["status"] != "AWAITING_APPROVAL" {
		t.Fatalf("first of two: %d %s", r.status, r.raw)
	}
	if r := e.do(http.MethodPost, "/v1/withdrawals/"+id+"/approve", approverKey1, nil); r.status != http.StatusConflict {
		t.Fatalf("same approver twice: %d %s", r.status, r.raw)
	} else if c, _ := r.errorOf(t); c != CodeAlreadyApproved {
		t.Fatalf("same approver twice: %s", r.raw)
	}
	if n := e.count("test_outbox"); n != msgs+1 {
		t.Fatal("released after one of two approvals")
	}
	r = e.do(http.MethodPost, "/v1/withdrawals/"+id+"/approve", approverKey2, nil)
	if r.status != http.StatusOK || r.json(t)["status"] != "PENDING" {
		t.Fatalf("second of two: %d %s", r.status, r.raw)
	}
	if got := r.json(t)["approvers"].([]any); len(got) != 2 {
		t.Fatalf("approvers %v", got)
	}

	// Rejection: CANCELED with the reason.
	r = e.post(aliceKey, body("rej", "amount", "500"))
	id = r.json(t)["id"].(string)
	r = e.do(http.MethodPost, "/v1/withdrawals/"+id+"/reject", approverKey2, []byte(`{"reason":"customer could not be reached"}`))
	if r.status != http.StatusOK || r.json(t)["status"] != "CANCELED" {
		t.Fatalf("reject: %d %s", r.status, r.raw)
	}
	if msg := r.json(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "customer could not be reached") || !strings.Contains(msg, "alice/approver-two") {
		t.Fatalf("reject reason %q", msg)
	}
	if n := e.count("test_outbox"); n != msgs+2 {
		t.Fatalf("%d messages after a rejection, want %d", n, msgs+2)
	}
	// A revoked approver key no longer works (after the auth cache's TTL; the cache is per server).
	if err := e.st.RevokeAPIKey(context.Background(), e.alice.ID, "approver-one"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.ClientByKey(context.Background(), approverKey1); err != store.ErrNotFound {
		t.Fatalf("revoked key: %v", err)
	}
}

func TestExpiredKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.st.AddAPIKey(ctx, e.alice.ID, "old", "sk_test_expired_0123456789abcdef01234567", []string{store.ScopeWithdrawalsRead}, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if r := e.do(http.MethodGet, "/v1/withdrawals", "sk_test_expired_0123456789abcdef01234567", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("expired key: %d %s", r.status, r.raw)
	}
	if err := e.st.AddAPIKey(ctx, e.alice.ID, "bad", "sk_x", []string{"withdrawals:everything"}, time.Time{}); err == nil {
		t.Fatal("unknown scope accepted")
	}
}

func TestListFilters(t *testing.T) {
	e := newEnv(t)
	for i, b := range []map[string]any{
		body("f1"), body("f2", "asset", "POL"), body("f3", "chain", "amoy", "asset", "POL"), body("f4"),
	} {
		if r := e.post(aliceKey, b); r.status != http.StatusCreated {
			t.Fatalf("post %d: %d %s", i, r.status, r.raw)
		}
	}
	mid := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	if r := e.post(aliceKey, body("f5")); r.status != http.StatusCreated {
		t.Fatal(r.status)
	}
	ext := func(query string) string {
		t.Helper()
		ws, _ := listPage(t, e, aliceKey, "?"+query)
		var out []string
		for _, w := range ws {
			out = append(out, w["external_id"].(string))
		}
		return strings.Join(out, ",")
	}
	for q, want := range map[string]string{
		"chain=local":            "f5,f4,f2,f1",
		"chain=amoy":             "f3",
		"asset=POL":              "f3,f2",
		"chain=local&asset=USDT": "f5,f4,f1",
		"created_from=" + mid.Format(time.RFC3339Nano): "f5",
		"created_to=" + mid.Format(time.RFC3339Nano):   "f4,f3,f2,f1",
		"external_id=f2&asset=USDT":                    "",
		"external_id=f2&asset=POL":                     "f2",
	} {
		if got := ext(q); got != want {
			t.Errorf("?%s: %s, want %s", q, got, want)
		}
	}
	// Pages keep the filter.
	ws, next := listPage(t, e, aliceKey, "?asset=USDT&limit=2")
	if len(ws) != 2 || next == nil {
		t.Fatalf("first page %d %v", len(ws), next)
	}
	if got := ext("asset=USDT&limit=2&cursor=" + next.(string)); got != "f1" {
		t.Fatalf("second page %s", got)
	}
	for _, q := range []string{"chain=nope", "created_from=yesterday", "created_to=2026-13-01T00:00:00Z"} {
		if r := e.do(http.MethodGet, "/v1/withdrawals?"+q, aliceKey, nil); r.status != http.StatusBadRequest {
			t.Errorf("?%s: %d", q, r.status)
		}
	}
}

// TestPolicyExactAt18Decimals: limits of 18-decimal assets are beyond a double's precision; consuming
// and releasing stay exact to the wei.
func TestPolicyExactAt18Decimals(t *testing.T) {
	e := newPolicyEnv(t)
	limit, _ := new(big.Int).SetString("1000000000000000000000001", 10) // 1,000,000 POL + 1 wei
	e.setLimits(policy.Limits{Asset: "POL", Chain: "local", DailyLimit: limit})
	pol := func(ext, amount string) map[string]any { return body(ext, "asset", "POL", "amount", amount) }
	if r := e.post(aliceKey, pol("big", "1000000")); r.status != http.StatusCreated {
		t.Fatalf("big: %d %s", r.status, r.raw)
	}
	wei := "0.000000000000000001"
	if r := e.post(aliceKey, pol("wei1", wei)); r.status != http.StatusCreated {
		t.Fatalf("last wei: %d %s", r.status, r.raw)
	}
	expectBreach(t, e.post(aliceKey, pol("wei2", wei)), CodeLimitExceeded, "amount", policy.RuleDailyTotal)
	if r := e.do(http.MethodPost, "/v1/withdrawals/"+idOf(t, e, "wei1")+"/cancel", aliceKey, nil); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	if r := e.post(aliceKey, pol("wei3", wei)); r.status != http.StatusCreated {
		t.Fatalf("wei after release: %d %s", r.status, r.raw)
	}
	expectBreach(t, e.post(aliceKey, pol("wei4", wei)), CodeLimitExceeded, "amount", policy.RuleDailyTotal)
}

// TestPolicyCache: with CacheTTL, limits and lists come from memory and a change bites within the TTL;
// the 24 h total stays exact (it is read under the lock, never cached).
func TestPolicyCache(t *testing.T) {
	e := newPolicyEnv(t, func(d *Deps) {
		eng, err := policy.New(policy.Deps{Store: d.Store, CacheTTL: 300 * time.Millisecond}, nil, policy.NopMetrics())
		if err != nil {
			t.Fatal(err)
		}
		d.Policy = eng
	})
	e.setLimits(policy.Limits{DailyLimit: usdt(20_000_000), MaxAmount: usdt(15_000_000)})
	if r := e.post(aliceKey, body("c1", "amount", "15")); r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	expectBreach(t, e.post(aliceKey, body("c2", "amount", "5.000001")), CodeLimitExceeded, "amount", policy.RuleDailyTotal)
	bad := common.HexToAddress("0x2222222222222222222222222222222222222222")
	if err := policy.ListAddress(context.Background(), e.st.DB, policy.GlobalList, "deny", bad, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(350 * time.Millisecond)
	expectBreach(t, e.post(aliceKey, body("c3", "to", bad.Hex(), "amount", "1")), CodeLimitExceeded, "to", policy.RuleDenylist)
	if r := e.post(aliceKey, body("c4", "amount", "5")); r.status != http.StatusCreated {
		t.Fatalf("exactly at the limit through the cache: %d %s", r.status, r.raw)
	}
}

// TestPolicyLimitsChangedUnderCache: the total is consumed last in the create transaction, under the
// policy row's lock, against the limits the create was decided on; when the row says otherwise (an
// operator lowered the total or the maximum while the cache still held the old row), the create runs
// again on the row's limits, so a changed 24 h total or maximum bites at once, cache or not.
func TestPolicyLimitsChangedUnderCache(t *testing.T) {
	e := newPolicyEnv(t, func(d *Deps) {
		eng, err := policy.New(policy.Deps{Store: d.Store, CacheTTL: time.Hour}, nil, policy.NopMetrics())
		if err != nil {
			t.Fatal(err)
		}
		d.Policy = eng
	})
	e.setLimits(policy.Limits{DailyLimit: usdt(100_000_000), MaxAmount: usdt(50_000_000)})
	if r := e.post(aliceKey, body("s1", "amount", "10")); r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	e.setLimits(policy.Limits{DailyLimit: usdt(15_000_000), MaxAmount: usdt(8_000_000)})
	expectBreach(t, e.post(aliceKey, body("s2", "amount", "9")), CodeLimitExceeded, "amount", policy.RuleMaxAmount)
	expectBreach(t, e.post(aliceKey, body("s3", "amount", "5.000001")), CodeLimitExceeded, "amount", policy.RuleDailyTotal)
	if r := e.post(aliceKey, body("s4", "amount", "5")); r.status != http.StatusCreated {
		t.Fatalf("exactly at the new total: %d %s", r.status, r.raw)
	}
	var n int
	if err := e.st.DB.QueryRow(`SELECT COUNT(*) FROM withdrawals WHERE external_id IN ('s2','s3')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused creates left %d rows (%v)", n, err)
	}
}
