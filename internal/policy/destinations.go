package policy

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/uuid"
)

// Destinations is an in-memory index of the edges (first and last four hex characters, store.AddressEdge)
// of every client's recent destinations on each chain, so that the address-poisoning check asks the
// database only when a destination shares its edge with an address seen before. With random
// destinations that is almost never, and paying an address again is answered here too: the index keeps,
// per edge, a fingerprint of the one address seen with it (or "several").
//
// Invariant: the index never answers "no look-alike" wrongly. It answers only once loaded, and it holds
// every destination of the window that any API instance has committed, because
//   - this instance records each destination it checks, before its create transaction opens;
//   - Run reads back, every DestinationsRefresh, the withdrawals whose ids (UUIDv7, so time-ordered as
//     strings) are younger than the previous read's start minus DestinationsOverlap. A create commits
//     within the API's create deadline (api.CreateTimeout, well under the overlap) of its id's time, so a
//     create committed on another instance after one read is in the next. Clock skew between instances
//     eats into the same margin.
//
// Another instance's create is therefore seen here up to DestinationsRefresh late. That is not a gap for
// this check: a poisoner needs the real destination to be paid and seen on chain before it can grind a
// look-alike, dust the victim with it and have the victim paste it — minutes, not seconds.
//
// Anything the index cannot prove (an edge with another address or several, an index not loaded yet or
// grown past its bound) is asked of the database, as without an index.
type Destinations struct {
	db     *sql.DB
	window time.Duration
	log    *slog.Logger
	met    Metrics
	max    int

	mu    sync.Mutex
	ready bool
	full  bool // past max: every lookup goes to the database until the next rebuild
	m     map[destKey]uint64
	// during holds what this instance records while the index is loaded whole into a new map, to be
	// merged into it when it replaces the old one (nil when no load is under way).
	during []destEntry
	chains map[string]uint16
	seed   maphash.Seed
	// since is where the next read starts (the previous read's start minus the overlap); built is when
	// the index was last loaded whole.
	since, built time.Time
}

type destEntry struct {
	k  destKey
	fp uint64
}

// destKey is a client's destinations on one chain with one edge (the chain interned, to keep an entry small).
type destKey struct {
	client int64
	chain  uint16
	edge   uint32
}

// How the index is kept.
const (
	DestinationsRefresh = 30 * time.Second
	DestinationsOverlap = time.Minute
	// DestinationsRebuild is how often the index is loaded whole again, dropping what left the window.
	DestinationsRebuild = 24 * time.Hour
	// DefaultDestinationsMax bounds the index (about 40 bytes an entry).
	DefaultDestinationsMax = 4_000_000
	// several is the fingerprint of an edge seen with more than one address.
	several uint64 = 0
)

// NewDestinations makes an empty index of db's withdrawals over window (default 30 days) holding at most
// max entries (DefaultDestinationsMax when 0); Run loads and keeps it. A nil log discards.
func NewDestinations(db *sql.DB, window time.Duration, max int, log *slog.Logger, m Metrics) *Destinations {
	if window <= 0 {
		window = DefaultPoisoningWindow
	}
	if max <= 0 {
		max = DefaultDestinationsMax
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NopMetrics()
	}
	return &Destinations{db: db, window: window, log: log, met: m, max: max, m: map[destKey]uint64{},
		chains: map[string]uint16{}, seed: maphash.MakeSeed()}
}

// DefaultPoisoningWindow is how far back a client's destinations are compared by default.
const DefaultPoisoningWindow = 30 * 24 * time.Hour

// Run loads the index, then reads the new withdrawals every DestinationsRefresh and loads it whole again
// every DestinationsRebuild, until ctx ends. A failed read is logged and tried again at the next tick;
// until the first load succeeds every lookup goes to the database.
func (d *Destinations) Run(ctx context.Context) error {
	t := time.NewTicker(DestinationsRefresh)
	defer t.Stop()
	for {
		if err := d.Refresh(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("destination index: read failed; look-alike checks ask the database meanwhile", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh reads what is new since the last read, or everything in the window when the index is not
// loaded or due for a rebuild (then into a fresh map, swapped in whole).
func (d *Destinations) Refresh(ctx context.Context) error {
	start := time.Now()
	d.mu.Lock()
	whole := !d.ready || start.Sub(d.built) >= DestinationsRebuild
	since := d.since
	into := d.m
	if whole {
		since = start.Add(-d.window)
		into = map[destKey]uint64{}
		d.during = []destEntry{}
	}
	d.mu.Unlock()
	n, err := d.read(ctx, since, func(client int64, chain string, edge uint32, fp uint64) {
		d.mu.Lock()
		merge(into, d.key(client, chain, edge), fp)
		d.mu.Unlock()
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if whole {
		during := d.during
		d.during = nil
		if err != nil {
			return err
		}
		// The new map has every committed destination of the window up to the load's start; what this
		// instance recorded since is added, so that its own creates are never forgotten by a swap.
		for _, e := range during {
			merge(into, e.k, e.fp)
		}
		d.m, d.ready, d.built, d.full = into, true, start, false
		d.log.Info("destination index loaded", "destinations", n, "entries", len(into), "took", time.Since(start).Round(time.Millisecond))
	} else if err != nil {
		return err
	}
	d.since = start.Add(-DestinationsOverlap)
	if len(d.m) > d.max && !d.full {
		d.full = true
		d.log.Warn("destination index is full: look-alike checks ask the database until the next rebuild",
			"entries", len(d.m), "max", d.max)
	}
	d.met.DestinationEntries(len(d.m))
	return nil
}

// read calls add for each withdrawal created since then, by id ranges of at most readPage rows.
func (d *Destinations) read(ctx context.Context, since time.Time, add func(client int64, chain string, edge uint32, fp uint64)) (int, error) {
	const readPage = 20_000
	after := uuidv7Floor(since)
	n := 0
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		rows, err := d.db.QueryContext(cctx, `SELECT id, client_id, chain, to_address FROM withdrawals WHERE id > ? ORDER BY id LIMIT ?`, after, readPage)
		if err != nil {
			cancel()
			return n, fmt.Errorf("recent destinations: %w", err)
		}
		page := 0
		var id, chain, to sql.RawBytes
		var client int64
		for rows.Next() {
			if err := rows.Scan(&id, &client, &chain, &to); err != nil {
				rows.Close()
				cancel()
				return n, fmt.Errorf("recent destinations: %w", err)
			}
			page++
			if edge, addr, ok := parseEdge(string(to)); ok {
				add(client, string(chain), edge, d.fingerprint(addr))
			}
			after = string(id)
		}
		err = rows.Err()
		rows.Close()
		cancel()
		if err != nil {
			return n, fmt.Errorf("recent destinations: %w", err)
		}
		n += page
		if page < readPage {
			return n, nil
		}
	}
}

// merge records fp under k: the first address seen with an edge is kept; another makes it several.
func merge(m map[destKey]uint64, k destKey, fp uint64) {
	if old, ok := m[k]; !ok {
		m[k] = fp
	} else if old != fp {
		m[k] = several
	}
}

// clear records to as a destination of client on chain and reports whether the index proves that no
// other address of the window shares its edge: the edge was never seen, or only with to itself.
func (d *Destinations) clear(client int64, chain string, to common.Address) bool {
	edge := edgeOf(to)
	fp := d.fingerprint(to)
	d.mu.Lock()
	k := d.key(client, chain, edge)
	old, seen := d.m[k]
	if !d.full {
		merge(d.m, k, fp)
	}
	if d.during != nil {
		d.during = append(d.during, destEntry{k, fp})
	}
	ok := d.ready && !d.full && (!seen || old == fp)
	d.mu.Unlock()
	if ok {
		d.met.Lookalike("index")
	} else {
		d.met.Lookalike("database")
	}
	return ok
}

// key must be called with d.mu held (it interns chain).
func (d *Destinations) key(client int64, chain string, edge uint32) destKey {
	c, ok := d.chains[chain]
	if !ok {
		c = uint16(len(d.chains))
		d.chains[chain] = c
	}
	return destKey{client: client, chain: c, edge: edge}
}

// fingerprint is a keyed 64-bit hash of a: telling two addresses with one edge apart by it cannot be
// steered by whoever chooses the addresses (the seed is this process's own), and an accidental match is
// 2^-64. Never several.
func (d *Destinations) fingerprint(a common.Address) uint64 {
	h := maphash.Bytes(d.seed, a[:])
	if h == several {
		h = 1
	}
	return h
}

// edgeOf is the first two and last two bytes of a: store.AddressEdge's eight hex characters.
func edgeOf(a common.Address) uint32 {
	return binary.BigEndian.Uint32([]byte{a[0], a[1], a[18], a[19]})
}

// parseEdge reads a stored 0x address.
func parseEdge(s string) (uint32, common.Address, bool) {
	if len(s) != 42 || !strings.HasPrefix(s, "0x") {
		return 0, common.Address{}, false
	}
	var a common.Address
	if _, err := hex.Decode(a[:], []byte(s[2:])); err != nil {
		return 0, common.Address{}, false
	}
	return edgeOf(a), a, true
}

// uuidv7Floor is the smallest UUIDv7 of time t's millisecond, as the database stores ids (lower-case,
// hyphenated): every id made at or after t sorts above it.
func uuidv7Floor(t time.Time) string {
	var u uuid.UUID
	ms := uint64(max(t.UnixMilli(), 0))
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	return u.String()
}
