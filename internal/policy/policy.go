// Package policy decides whether a withdrawal is accepted, refused or held for approval: the one place
// for per-client limits (per-withdrawal maximum, rolling 24 h total, velocity), destination lists,
// approval thresholds and the recipient checks.
//
// Limits are configured per (client, chain, asset) in the withdrawal_policies table and destination
// lists in address_lists (client 0 is the global denylist); see docs/integration.md. Consumption is
// atomic: Admit runs inside the transaction that inserts the withdrawal and locks the policy row first,
// so concurrent creates of one client and asset are serialized and each sees the others' committed
// rows. Usage is kept per minute bucket (policy_usage: the 24 h total is a sum of at most 1440 rows,
// whatever the volume), with what each withdrawal took in policy_consumptions; store.Transition gives it
// back in the transaction that moves a withdrawal to FAILED or CANCELED, so the release has one place,
// the same as the status change.
package policy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/store"
)

// Rule names a policy rule, as a refusal or a hold reports it.
type Rule string

// The rules.
const (
	RuleMaxAmount   Rule = "max_amount"
	RuleDailyTotal  Rule = "daily_total"
	RuleVelocity    Rule = "velocity"
	RuleDenylist    Rule = "denylist"
	RuleAllowlist   Rule = "allowlist"
	RuleApproval    Rule = "approval_threshold"
	RuleTwoPerson   Rule = "two_person_threshold"
	RuleOwnWallet   Rule = "own_wallet"
	RuleReserved    Rule = "reserved_address"
	RuleTokenSelf   Rule = "token_contract"
	RuleContract    Rule = "native_to_contract"
	RuleBlacklisted Rule = "token_blacklist"
	RulePoisoning   Rule = "address_poisoning"
)

// Breach is a refusal: the API answers it 422 limit_exceeded naming Field and the rule.
type Breach struct {
	Rule    Rule
	Field   string
	Message string
}

func (b *Breach) Error() string { return b.Message + " (rule " + string(b.Rule) + ")" }

// Request is a withdrawal being created.
type Request struct {
	// WithdrawalID is the id the withdrawal will have (its consumption of the limits is recorded under it).
	WithdrawalID string
	ClientID     int64
	Chain        string
	Asset        string
	To           common.Address
	Amount       *big.Int
}

// Limits are a client's limits for one chain and asset; nil means none.
type Limits struct {
	ClientID           int64
	Chain, Asset       string
	MaxAmount          *big.Int
	DailyLimit         *big.Int
	PerMinute          *int
	ApprovalThreshold  *big.Int
	TwoPersonThreshold *big.Int
}

// Deps are the collaborators of an Engine: the store (required) and the recipient checks (optional).
type Deps struct {
	Store *store.Store
	// Recipients runs the recipient checks before the create transaction; nil skips them.
	Recipients *Recipients
	// Now is the clock (time.Now when nil), for the 24 h window and the velocity minute.
	Now func() time.Time
	// CacheTTL keeps each client's limits and destination lists in memory for that long (0: read them in
	// every create transaction). A changed limit or list then takes up to CacheTTL to bite; the 24 h
	// total and the velocity count are read under the policy row's lock whatever this is.
	CacheTTL time.Duration
}

// Engine evaluates the policy.
type Engine struct {
	st  *store.Store
	rc  *Recipients
	now func() time.Time
	log *slog.Logger
	met Metrics
	// cache holds clients' limits and lists (nil: none, every create reads them).
	cache *viewCache
}

// New checks d and builds the engine. A nil log discards; m may be NopMetrics().
func New(d Deps, log *slog.Logger, m Metrics) (*Engine, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("policy: Store is required")
	case m == nil:
		return nil, errors.New("policy: Metrics is required (NopMetrics() for none)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	eng := &Engine{st: d.Store, rc: d.Recipients, now: now, log: log, met: m}
	if d.CacheTTL > 0 {
		eng.cache = &viewCache{ttl: d.CacheTTL, m: map[int64]*clientView{}}
	}
	return eng, nil
}

// Precheck runs what needs the chain (the recipient checks) before the create transaction opens, so
// that no row lock is held across an RPC call. A refusal is a *Breach; a hold is returned as a non-empty
// reason for Admit.
func (e *Engine) Precheck(ctx context.Context, r Request) (hold string, err error) {
	if e.rc == nil {
		return "", nil
	}
	hold, err = e.rc.Check(ctx, e.st, r)
	var b *Breach
	switch {
	case errors.As(err, &b):
		e.met.Decision(string(b.Rule), "refused")
	case err == nil && hold != "":
		e.met.Decision("recipient", "held")
	}
	return hold, err
}

// Admit runs inside the create transaction, before the insert: destination lists, the per-withdrawal
// maximum and the approval thresholds. With a rolling 24 h total or a velocity limit set, the returned
// Admission's Finish runs last in that transaction, after the inserts: it locks the policy row, reads
// the limits again and counts and consumes the total under that lock, so the lock is held only for
// those few statements and the commit. hold is Precheck's hold reason, if any. A refusal is a *Breach,
// from Admit or from Finish.
func (e *Engine) Admit(ctx context.Context, tx *sql.Tx, r Request, hold string) (store.Admission, error) {
	adm, err := e.admit(ctx, tx, r, hold)
	e.decided(adm, err)
	if err != nil || adm.Finish == nil {
		return adm, err
	}
	finish := adm.Finish
	adm.Finish = func(tx *sql.Tx) error {
		err := finish(tx)
		e.decided(adm, err)
		return err
	}
	return adm, nil
}

// decided counts a decision once: an Admission with a Finish is counted when Finish has run.
func (e *Engine) decided(adm store.Admission, err error) {
	var b *Breach
	switch {
	case errors.As(err, &b):
		e.met.Decision(string(b.Rule), "refused")
	case err != nil || adm.Finish != nil:
	case adm.Status == store.AwaitingApproval:
		e.met.Decision("approval", "held")
	default:
		e.met.Decision("", "accepted")
	}
}

func (e *Engine) admit(ctx context.Context, tx *sql.Tx, r Request, hold string) (store.Admission, error) {
	adm := store.Admission{Status: store.Pending}
	to := r.To.Hex()
	var (
		l   *Limits
		err error
	)
	if e.cache != nil {
		v, verr := e.cache.get(ctx, tx, r.ClientID, e.now())
		if verr != nil {
			return adm, verr
		}
		if err := checkLists(to, v.deny[to], v.allow[to], v.anyAllow); err != nil {
			return adm, err
		}
		if l = v.limits[[2]string{r.Chain, r.Asset}]; l == nil {
			err = store.ErrNotFound
		}
	} else {
		var denied, allowed, anyAllow int
		if err := tx.QueryRowContext(ctx, `SELECT
				COALESCE(SUM(kind = 'deny' AND address = ?), 0),
				COALESCE(SUM(kind = 'allow' AND address = ? AND client_id = ?), 0),
				COALESCE(SUM(kind = 'allow' AND client_id = ?), 0)
			FROM address_lists WHERE client_id IN (0, ?)`, to, to, r.ClientID, r.ClientID, r.ClientID).
			Scan(&denied, &allowed, &anyAllow); err != nil {
			return adm, fmt.Errorf("policy lists: %w", err)
		}
		if err := checkLists(to, denied > 0, allowed > 0, anyAllow > 0); err != nil {
			return adm, err
		}
		l, err = loadLimits(ctx, tx, r.ClientID, r.Chain, r.Asset, false)
	}
	if errors.Is(err, store.ErrNotFound) {
		return held(adm, hold, 1), nil
	}
	if err != nil {
		return adm, err
	}
	if adm, err = decide(r, l, hold); err != nil {
		return adm, err
	}
	// Only the 24 h total and the velocity count need creates of one client and asset serialized: a
	// client with only a maximum and thresholds creates in parallel.
	if l.DailyLimit != nil || l.PerMinute != nil {
		adm.Finish = func(tx *sql.Tx) error { return e.consumeLocked(ctx, tx, r, l) }
	}
	return adm, nil
}

// decide applies l's maximum and approval thresholds to r.
func decide(r Request, l *Limits, hold string) (store.Admission, error) {
	adm := store.Admission{Status: store.Pending}
	if l.MaxAmount != nil && r.Amount.Cmp(l.MaxAmount) > 0 {
		return adm, &Breach{Rule: RuleMaxAmount, Field: "amount", Message: fmt.Sprintf(
			"amount %s exceeds the per-withdrawal maximum %s of rule max_amount", r.Amount, l.MaxAmount)}
	}
	switch {
	case l.TwoPersonThreshold != nil && r.Amount.Cmp(l.TwoPersonThreshold) > 0:
		return held(adm, joinReason(hold, fmt.Sprintf("amount above %s (rule %s): two approvers", l.TwoPersonThreshold, RuleTwoPerson)), 2), nil
	case l.ApprovalThreshold != nil && r.Amount.Cmp(l.ApprovalThreshold) > 0:
		return held(adm, joinReason(hold, fmt.Sprintf("amount above %s (rule %s)", l.ApprovalThreshold, RuleApproval)), 1), nil
	}
	return held(adm, hold, 1), nil
}

// consumeLocked runs last in the create transaction: it records what r takes, then locks the policy
// row, so that concurrent creates of one client and asset are serialized from there to their commit,
// checks that the limits decided on are still the row's (else the create runs again: store.ErrStale),
// then the velocity, and consumes r's amount only if the rolling 24 h total allows it. Under the lock run
// only the lock itself, the velocity count when set, one conditional insert and the commit.
func (e *Engine) consumeLocked(ctx context.Context, tx *sql.Tx, r Request, decided *Limits) error {
	now := e.now().UTC()
	bucket := now.Truncate(time.Minute)
	if decided.DailyLimit != nil {
		// Keyed by the withdrawal: no other create touches it, so it is written before the lock.
		if _, err := tx.ExecContext(ctx, `INSERT INTO policy_consumptions (withdrawal_id, client_id, chain, asset, bucket, amount)
			VALUES (?,?,?,?,?,?)`, r.WithdrawalID, r.ClientID, r.Chain, r.Asset, bucket, r.Amount.String()); err != nil {
			return fmt.Errorf("policy consumption: %w", err)
		}
	}
	l, err := loadLimits(ctx, tx, r.ClientID, r.Chain, r.Asset, true)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !l.equal(decided)) {
		if e.cache != nil {
			e.cache.drop(r.ClientID)
		}
		return store.ErrStale
	}
	if err != nil {
		return err
	}
	if l.PerMinute != nil {
		// At most per_minute rows are in the window (the rest were refused), so this range is short. The
		// withdrawal being created is in it (inserted earlier in this transaction) and is left out.
		var lastMinute int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM withdrawals
			WHERE client_id = ? AND chain = ? AND asset = ? AND created_at > ? AND id <> ?`,
			r.ClientID, r.Chain, r.Asset, now.Add(-time.Minute), r.WithdrawalID).Scan(&lastMinute); err != nil {
			return fmt.Errorf("policy velocity: %w", err)
		}
		if lastMinute >= *l.PerMinute {
			return &Breach{Rule: RuleVelocity, Field: "amount", Message: fmt.Sprintf(
				"%d withdrawals of %s on %s in the last minute reach the rule velocity limit of %d per minute", lastMinute, r.Asset, r.Chain, *l.PerMinute)}
		}
	}
	if l.DailyLimit == nil {
		return nil
	}
	// The sum and the consumption in one statement, run after the lock is held: under READ COMMITTED its
	// read sees every earlier holder's commit. The current minute's bucket counts whole, the one 24 h ago
	// does not: the window is 23 h 59 min to 24 h long, never longer. Amounts are compared as
	// DECIMAL(65,0), exactly (a string parameter would be compared as a double).
	res, err := tx.ExecContext(ctx, `INSERT INTO policy_usage (client_id, chain, asset, bucket, amount)
		SELECT ?, ?, ?, ?, CAST(? AS DECIMAL(65,0)) FROM DUAL
		WHERE (SELECT COALESCE(SUM(u.amount), 0) FROM policy_usage u WHERE u.client_id = ? AND u.chain = ? AND u.asset = ? AND u.bucket > ?)
			+ CAST(? AS DECIMAL(65,0)) <= CAST(? AS DECIMAL(65,0))
		ON DUPLICATE KEY UPDATE amount = amount + VALUES(amount)`,
		r.ClientID, r.Chain, r.Asset, bucket, r.Amount.String(),
		r.ClientID, r.Chain, r.Asset, now.Add(-24*time.Hour), r.Amount.String(), l.DailyLimit.String())
	if err != nil {
		return fmt.Errorf("policy usage: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("policy usage: %w", err)
	} else if n > 0 {
		return nil
	}
	// Refused: read the total for the message (still under the lock).
	var total string
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount), 0) FROM policy_usage
		WHERE client_id = ? AND chain = ? AND asset = ? AND bucket > ?`,
		r.ClientID, r.Chain, r.Asset, now.Add(-24*time.Hour)).Scan(&total); err != nil {
		return fmt.Errorf("policy usage: %w", err)
	}
	used, ok := new(big.Int).SetString(total, 10)
	if !ok {
		return fmt.Errorf("policy usage: bad sum %q", total)
	}
	left := new(big.Int).Sub(l.DailyLimit, used)
	if left.Sign() < 0 {
		left.SetInt64(0)
	}
	return &Breach{Rule: RuleDailyTotal, Field: "amount", Message: fmt.Sprintf(
		"amount %s exceeds what is left (%s) of the 24 h total %s of rule daily_total", r.Amount, left, l.DailyLimit)}
}

// equal reports whether l and o set the same limits.
func (l *Limits) equal(o *Limits) bool {
	eqInt := func(a, b *big.Int) bool { return (a == nil) == (b == nil) && (a == nil || a.Cmp(b) == 0) }
	return eqInt(l.MaxAmount, o.MaxAmount) && eqInt(l.DailyLimit, o.DailyLimit) && eqInt(l.ApprovalThreshold, o.ApprovalThreshold) &&
		eqInt(l.TwoPersonThreshold, o.TwoPersonThreshold) &&
		(l.PerMinute == nil) == (o.PerMinute == nil) && (l.PerMinute == nil || *l.PerMinute == *o.PerMinute)
}

func checkLists(to string, denied, allowed, anyAllow bool) error {
	if denied {
		return &Breach{Rule: RuleDenylist, Field: "to", Message: "destination " + to + " is on a denylist"}
	}
	if anyAllow && !allowed {
		return &Breach{Rule: RuleAllowlist, Field: "to", Message: "destination " + to + " is not on this client's allowlist"}
	}
	return nil
}

func held(adm store.Admission, reason string, approvals int) store.Admission {
	if reason == "" {
		return adm
	}
	return store.Admission{Status: store.AwaitingApproval, Reason: reason, RequiredApprovals: approvals}
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func loadLimits(ctx context.Context, tx querier, client int64, chain, asset string, lock bool) (*Limits, error) {
	l := Limits{ClientID: client, Chain: chain, Asset: asset}
	var maxA, daily, appr, two sql.NullString
	var perMin sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT max_amount, daily_limit, per_minute, approval_threshold, two_person_threshold
		FROM withdrawal_policies WHERE client_id = ? AND chain = ? AND asset = ?`+map[bool]string{true: " FOR UPDATE"}[lock], client, chain, asset).
		Scan(&maxA, &daily, &perMin, &appr, &two)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("policy of client %d %s/%s: %w", client, chain, asset, err)
	}
	for _, p := range []struct {
		src sql.NullString
		dst **big.Int
	}{{maxA, &l.MaxAmount}, {daily, &l.DailyLimit}, {appr, &l.ApprovalThreshold}, {two, &l.TwoPersonThreshold}} {
		if !p.src.Valid {
			continue
		}
		v, ok := new(big.Int).SetString(p.src.String, 10)
		if !ok {
			return nil, fmt.Errorf("policy of client %d %s/%s: bad amount %q", client, chain, asset, p.src.String)
		}
		*p.dst = v
	}
	if perMin.Valid {
		n := int(perMin.Int64)
		l.PerMinute = &n
	}
	return &l, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SetLimits writes a client's limits for one chain and asset (replacing the previous ones).
func SetLimits(ctx context.Context, db *sql.DB, l Limits) error {
	dec := func(v *big.Int) any {
		if v == nil {
			return nil
		}
		return v.String()
	}
	var perMin any
	if l.PerMinute != nil {
		perMin = *l.PerMinute
	}
	if _, err := db.ExecContext(ctx, `REPLACE INTO withdrawal_policies (client_id, chain, asset, max_amount, daily_limit,
		per_minute, approval_threshold, two_person_threshold) VALUES (?,?,?,?,?,?,?,?)`, l.ClientID, l.Chain, l.Asset,
		dec(l.MaxAmount), dec(l.DailyLimit), perMin, dec(l.ApprovalThreshold), dec(l.TwoPersonThreshold)); err != nil {
		return fmt.Errorf("set policy of client %d %s/%s: %w", l.ClientID, l.Chain, l.Asset, err)
	}
	return nil
}

// GlobalList is the client id of the global denylist in address_lists.
const GlobalList int64 = 0

// ListAddress puts addr on client's allowlist or denylist (kind "allow" or "deny"; GlobalList with "deny"
// for the global denylist).
func ListAddress(ctx context.Context, db *sql.DB, client int64, kind string, addr common.Address, reason string) error {
	kind = strings.ToLower(kind)
	if kind != "allow" && kind != "deny" {
		return fmt.Errorf("address list kind %q: want allow or deny", kind)
	}
	if client == GlobalList && kind == "allow" {
		return errors.New("there is no global allowlist")
	}
	if _, err := db.ExecContext(ctx, `REPLACE INTO address_lists (client_id, address, kind, reason) VALUES (?,?,?,?)`,
		client, addr.Hex(), kind, reason); err != nil {
		return fmt.Errorf("list %s %s: %w", kind, addr.Hex(), err)
	}
	return nil
}
