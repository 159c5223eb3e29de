package policy

import (
	"context"
	"database/sql"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/uuid"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// idAt is a UUIDv7 of time t, as another instance would have made it then.
func idAt(t time.Time) string {
	u := uuid.Must(uuid.NewV7())
	ms := uint64(t.UnixMilli())
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	return u.String()
}

type destEnv struct {
	t      *testing.T
	st     *store.Store
	client int64
	n      int
}

func newDestEnv(t *testing.T) *destEnv {
	st, _ := testenv.Store(t)
	c, err := st.EnsureAPIClient(context.Background(), "dest", "key-"+testenv.UniqueName(t))
	if err != nil {
		t.Fatal(err)
	}
	return &destEnv{t: t, st: st, client: c.ID}
}

// create commits a withdrawal to to, made (id and created_at) at time at.
func (e *destEnv) create(to common.Address, at time.Time) {
	e.t.Helper()
	e.n++
	w := &store.Withdrawal{ID: idAt(at), ClientID: e.client, ExternalID: "d-" + strconv.Itoa(e.n), RequestHash: make([]byte, 32),
		Chain: "c", Asset: "POL", To: to.Hex(), Amount: big.NewInt(1), CorrelationID: "c"}
	if _, _, err := e.st.CreateWithdrawal(context.Background(), w, func(*sql.Tx) error { return nil }); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.DB.Exec(`UPDATE withdrawals SET created_at = ? WHERE id = ?`, at.UTC(), w.ID); err != nil {
		e.t.Fatal(err)
	}
}

func randomAddr(r *rand.Rand) common.Address {
	var a common.Address
	for i := range a {
		a[i] = byte(r.UintN(256))
	}
	return a
}

// lookalikeOf keeps a's first and last two bytes and changes one in the middle.
func lookalikeOf(a common.Address, r *rand.Rand) common.Address {
	b := a
	b[2+r.IntN(16)] ^= byte(1 + r.UintN(255))
	return b
}

// The index answers only what it can prove, and tells the database apart from itself in what it
// answers: an unseen edge and a repeat of the one address are answered; a look-alike never is.
func TestDestinationsAnswers(t *testing.T) {
	e := newDestEnv(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	old, paid := randomAddr(r), randomAddr(r)
	e.create(old, now.Add(-40*24*time.Hour)) // outside the 30-day window
	e.create(paid, now.Add(-time.Hour))

	d := NewDestinations(e.st.DB, 0, 0, nil, nil)
	if d.clear(e.client, "c", randomAddr(r)) {
		t.Fatal("an index not loaded yet answered")
	}
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		to   common.Address
		want bool
	}{
		{"new edge", randomAddr(r), true},
		{"the paid address again", paid, true},
		{"a look-alike of the paid address", lookalikeOf(paid, r), false},
		{"a look-alike of an address out of the window", lookalikeOf(old, r), true},
	} {
		if got := d.clear(e.client, "c", c.to); got != c.want {
			t.Errorf("%s: clear = %v, want %v", c.name, got, c.want)
		}
	}
	// Another client's or chain's destinations are not this one's.
	if !d.clear(e.client+1, "c", lookalikeOf(paid, r)) || !d.clear(e.client, "other", lookalikeOf(paid, r)) {
		t.Error("a look-alike of another client's or chain's destination was not answered")
	}
	// A destination checked here, then a look-alike of it, before any commit.
	fresh := randomAddr(r)
	if !d.clear(e.client, "c", fresh) || d.clear(e.client, "c", lookalikeOf(fresh, r)) {
		t.Error("this instance's own destination was not remembered at once")
	}
}

// Another instance's creates reach the index at the next refresh, including one that committed late
// (its id a whole CreateTimeout older than the refresh before it); a full index answers nothing.
func TestDestinationsRefresh(t *testing.T) {
	e := newDestEnv(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	d := NewDestinations(e.st.DB, 0, 0, nil, nil)
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	other, late := randomAddr(r), randomAddr(r)
	e.create(other, time.Now())
	e.create(late, time.Now().Add(-DestinationsOverlap/2)) // made before the last refresh, committed after it
	if !d.clear(e.client, "c", lookalikeOf(other, r)) {
		t.Fatal("another instance's create was known before a refresh (the test proves nothing)")
	}
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if d.clear(e.client, "c", lookalikeOf(other, r)) {
		t.Error("another instance's create was not read by the refresh")
	}
	if d.clear(e.client, "c", lookalikeOf(late, r)) {
		t.Error("a create committed after the previous refresh, with an older id, was missed")
	}

	small := NewDestinations(e.st.DB, 0, 1, nil, nil)
	if err := small.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if small.clear(e.client, "c", randomAddr(r)) {
		t.Error("a full index answered")
	}
}

// The recipient checks give the same answer with the index as with the database alone, over a run of
// new destinations, repeats and look-alikes, each created after it was checked.
func TestDestinationsAgreeWithDatabase(t *testing.T) {
	e := newDestEnv(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	m := &countMetrics{by: map[string]int{}}
	d := NewDestinations(e.st.DB, 0, 0, nil, m)
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	chains := map[string]ChainInfo{"c": {}}
	withIndex := &Recipients{Chains: chains, Destinations: d}
	plain := &Recipients{Chains: chains}
	var seen []common.Address
	held, fresh := 0, 0
	for i := range 300 {
		to := randomAddr(r)
		switch k := r.IntN(3); {
		case k == 1 && len(seen) > 0:
			to = seen[r.IntN(len(seen))]
		case k == 2 && len(seen) > 0:
			to = lookalikeOf(seen[r.IntN(len(seen))], r)
		default:
			fresh++
		}
		req := Request{ClientID: e.client, Chain: "c", Asset: "POL", To: to, Amount: big.NewInt(1)}
		want, err := plain.Check(ctx, e.st, req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := withIndex.Check(ctx, e.st, req)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("request %d to %s: with the index %q, without %q", i, to.Hex(), got, want)
		}
		if want != "" {
			held++
		}
		e.create(to, time.Now())
		seen = append(seen, to)
		if i%50 == 0 {
			if err := d.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if held < 50 {
		t.Fatalf("only %d of 300 held: the run did not exercise look-alikes", held)
	}
	// Every new destination is answered from memory (and repeats of an address alone on its edge).
	if m.by["index"] < fresh || m.by["index"]+m.by["database"] != 300 {
		t.Fatalf("answered by %v", m.by)
	}
	t.Logf("%d of 300 held as look-alikes, every answer the database's; answered by %v", held, m.by)
}

type countMetrics struct {
	nopMetrics
	by map[string]int
}

func (m *countMetrics) Lookalike(by string) { m.by[by]++ }

func TestUUIDv7Floor(t *testing.T) {
	at := time.Now()
	floor := uuidv7Floor(at)
	for range 100 {
		if id := idAt(at); id < floor {
			t.Fatalf("id %s of the same millisecond sorts below the floor %s", id, floor)
		}
		if id := idAt(at.Add(-time.Millisecond)); id >= floor {
			t.Fatalf("id %s of the millisecond before sorts above the floor %s", id, floor)
		}
	}
}
