package embedded_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"github.com/sluice-custody/sluice/internal/embedded"
	"github.com/sluice-custody/sluice/internal/store"
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func startMySQL(t testing.TB, opts embedded.MySQLOptions) *embedded.MySQL {
	t.Helper()
	start := time.Now()
	m, err := embedded.StartMySQL(ctxT(t, 30*time.Second), opts)
	if err != nil {
		t.Fatalf("start embedded mysql: %v", err)
	}
	t.Logf("embedded mysql on %s started in %v", m.Addr(), time.Since(start))
	t.Cleanup(func() { m.Close() })
	return m
}

var dbSeq atomic.Int64

// freshDSN creates an empty database on m and returns its DSN.
func freshDSN(t testing.TB, m *embedded.MySQL) string {
	t.Helper()
	name := fmt.Sprintf("t%d", dbSeq.Add(1))
	db, err := sql.Open("mysql", m.DSNFor(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctxT(t, 30*time.Second), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return m.DSNFor(name)
}

// migrated opens store.Open on a fresh, migrated database of m.
func migrated(t testing.TB, m *embedded.MySQL) *store.Store {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	s, err := store.Open(ctx, freshDSN(t, m), 20)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	start := time.Now()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Logf("migrated in %v", time.Since(start))
	return s
}

func TestMigrate(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	s := migrated(t, m)
	ctx := ctxT(t, 30*time.Second)
	rows, err := s.DB.QueryContext(ctx, "SHOW TABLES")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	t.Logf("tables: %v", tables)
	for _, want := range []string{"api_clients", "sent_transactions", "tx_attempts", "batches", "withdrawals",
		"withdrawal_history", "managed_accounts", "balance_transfers", "queue_messages", "queue_dedup", "outbox"} {
		found := false
		for _, n := range tables {
			found = found || n == want
		}
		if !found {
			t.Errorf("table %s missing after migrate", want)
		}
	}
	// Migrating again is a no-op.
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}

// The dev wiring (devmode.freshDatabase) connects without a database, drops and recreates its database
// (which may exist from an earlier start), and migrates it.
func TestFreshDatabaseRecreated(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	ctx := ctxT(t, 30*time.Second)
	s, err := store.Open(ctx, m.DSNFor(""), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 2 {
		for _, stmt := range []string{"DROP DATABASE IF EXISTS `sluice_dev`", "CREATE DATABASE `sluice_dev`"} {
			if _, err := s.DB.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	s2, err := store.Open(ctx, m.DSNFor("sluice_dev"), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
}

// The session settings store.Open puts in the DSN, and the column defaults the code relies on.
func TestSessionAndDefaults(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	s := migrated(t, m)
	ctx := ctxT(t, 30*time.Second)
	var tz, now, utc string
	if err := s.DB.QueryRowContext(ctx, "SELECT @@SESSION.time_zone, CAST(NOW(6) AS CHAR), CAST(UTC_TIMESTAMP(6) AS CHAR)").Scan(&tz, &now, &utc); err != nil {
		t.Fatal(err)
	}
	if tz != "+00:00" || now[:19] != utc[:19] {
		t.Errorf("session time_zone=%q NOW(6)=%s UTC_TIMESTAMP(6)=%s; want UTC", tz, now, utc)
	}
	// InTx begins READ COMMITTED transactions (SET TRANSACTION ISOLATION LEVEL … then START TRANSACTION).
	if err := s.InTx(ctx, func(tx *sql.Tx) error {
		var iso string
		if err := tx.QueryRowContext(ctx, "SELECT @@SESSION.transaction_isolation").Scan(&iso); err != nil {
			return err
		}
		t.Logf("isolation inside InTx: %s (transactions are serial here whatever it says)", iso)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var txIso string
	if err := s.DB.QueryRowContext(ctx, "SELECT @@SESSION.tx_isolation").Scan(&txIso); err != nil {
		t.Errorf("@@tx_isolation (mysqlq reads it): %v", err)
	}

	c, err := s.EnsureAPIClient(ctx, "exchange", "sk_test_one")
	if err != nil {
		t.Fatal(err)
	}
	// ON DUPLICATE KEY UPDATE … VALUES(): same client, new key.
	c2, err := s.EnsureAPIClient(ctx, "exchange", "sk_test_two")
	if err != nil {
		t.Fatal(err)
	}
	if c2.ID != c.ID {
		t.Fatalf("upsert made a second client: %d vs %d", c2.ID, c.ID)
	}
	if _, err := s.ClientByKey(ctx, "sk_test_one"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old key still valid: %v", err)
	}
	if got, err := s.ClientByKey(ctx, "sk_test_two"); err != nil || got.ID != c.ID {
		t.Fatalf("new key: %v %v", got, err)
	}

	w := newWithdrawal(c.ID, "ext-defaults")
	got, created, err := s.CreateWithdrawal(ctx, w, func(*sql.Tx) error { return nil })
	if err != nil || !created {
		t.Fatalf("create: %v created=%v", err, created)
	}
	if got.CreatedAt.Nanosecond()%1000 != 0 || got.CreatedAt.Location() != time.UTC || time.Since(got.CreatedAt).Abs() > time.Minute {
		t.Errorf("created_at %v: want a UTC time of now with microseconds", got.CreatedAt)
	}
	if got.Amount.Cmp(w.Amount) != 0 || got.Status != store.Pending || got.Version != 0 {
		t.Errorf("stored %+v", got)
	}
	time.Sleep(5 * time.Millisecond)
	if err := s.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.LockWithdrawal(ctx, tx, w.ID); err != nil { // SELECT … FOR UPDATE with a join
			return err
		}
		return s.Transition(ctx, tx, w.ID, store.Pending, store.Signing, "test", "test", store.Change{})
	}); err != nil {
		t.Fatal(err)
	}
	after, err := s.GetWithdrawal(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !after.UpdatedAt.After(got.UpdatedAt) {
		t.Errorf("updated_at %v not moved by the update (was %v): ON UPDATE CURRENT_TIMESTAMP(6) not applied", after.UpdatedAt, got.UpdatedAt)
	}
	if after.Version != 1 || after.Status != store.Signing {
		t.Errorf("after transition: %+v", after)
	}
	hs, err := s.History(ctx, w.ID)
	if err != nil || len(hs) != 2 || hs[0].From != "" || hs[1].From != store.Pending || hs[1].To != store.Signing {
		t.Fatalf("history %+v %v", hs, err)
	}
	list, err := s.ListWithdrawals(ctx, store.ListFilter{ClientID: c.ID, Status: store.Signing, Limit: 10})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
}

func newWithdrawal(clientID int64, ext string) *store.Withdrawal {
	h := sha256.Sum256([]byte(ext))
	return &store.Withdrawal{
		ID: uuid.Must(uuid.NewV7()).String(), ClientID: clientID, ExternalID: ext, RequestHash: h[:],
		Chain: "local", Asset: "USDT", To: "0x000000000000000000000000000000000000dEaD",
		Amount: new(big.Int).Mul(big.NewInt(12_500_000), big.NewInt(1e12)), CorrelationID: uuid.NewString(),
	}
}

func noEnqueue(*sql.Tx) error { return nil }

// Two workers race to move one withdrawal PENDING → SIGNING: exactly one wins, the other gets ErrConflict.
func TestTransitionRace(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	s := migrated(t, m)
	ctx := ctxT(t, 60*time.Second)
	c, err := s.EnsureAPIClient(ctx, "exchange", "sk_race")
	if err != nil {
		t.Fatal(err)
	}
	const rounds, workers = 30, 4
	for r := range rounds {
		w := newWithdrawal(c.ID, fmt.Sprintf("race-%d", r))
		if _, _, err := s.CreateWithdrawal(ctx, w, noEnqueue); err != nil {
			t.Fatal(err)
		}
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := s.InTx(ctx, func(tx *sql.Tx) error {
					if _, err := s.LockWithdrawal(ctx, tx, w.ID); err != nil {
						return err
					}
					return s.Transition(ctx, tx, w.ID, store.Pending, store.Signing, fmt.Sprintf("worker %d", i), "test", store.Change{})
				})
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("worker %d: %v", i, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != workers-1 {
			t.Fatalf("round %d: %d wins, %d conflicts; want 1 and %d", r, wins.Load(), conflicts.Load(), workers-1)
		}
		hs, err := s.History(ctx, w.ID)
		if err != nil || len(hs) != 2 {
			t.Fatalf("round %d: history %+v %v; want 2 entries", r, hs, err)
		}
		got, _ := s.GetWithdrawal(ctx, w.ID)
		if got.Version != 1 {
			t.Fatalf("round %d: version %d, want 1", r, got.Version)
		}
	}
}

// Concurrent identical posts make one withdrawal; the others get it back with created=false.
func TestDuplicateExternalID(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	s := migrated(t, m)
	ctx := ctxT(t, 60*time.Second)
	c, err := s.EnsureAPIClient(ctx, "exchange", "sk_dup")
	if err != nil {
		t.Fatal(err)
	}
	first := newWithdrawal(c.ID, "ext-1")
	got, created, err := s.CreateWithdrawal(ctx, first, noEnqueue)
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	replay := newWithdrawal(c.ID, "ext-1")
	again, created, err := s.CreateWithdrawal(ctx, replay, noEnqueue)
	if err != nil || created || again.ID != got.ID {
		t.Fatalf("replay: created=%v id=%v (want %v) err=%v", created, again, got.ID, err)
	}
	// Raw error of the duplicate insert: 1062 with the key name, as MariaDB reports it.
	_, err = s.DB.ExecContext(ctx, `INSERT INTO withdrawals (id, client_id, external_id, request_hash, chain, asset,
		to_address, amount, status, correlation_id) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		replay.ID, c.ID, "ext-1", replay.RequestHash, "local", "USDT", replay.To, "1", "PENDING", "x")
	if !store.IsDuplicate(err) || !strings.Contains(err.Error(), "uq_withdrawals_external") {
		t.Fatalf("duplicate insert error %v: want 1062 naming uq_withdrawals_external", err)
	}
	t.Logf("duplicate external id: %v", err)
	// Same primary key.
	_, err = s.DB.ExecContext(ctx, `INSERT INTO withdrawals (id, client_id, external_id, request_hash, chain, asset,
		to_address, amount, status, correlation_id) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		got.ID, c.ID, "ext-other", replay.RequestHash, "local", "USDT", replay.To, "1", "PENDING", "x")
	if !store.IsDuplicate(err) || !strings.Contains(err.Error(), "PRIMARY") {
		t.Fatalf("duplicate primary key error %v", err)
	}

	// Concurrent identical posts.
	var wg sync.WaitGroup
	var made atomic.Int32
	ids := make([]string, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, created, err := s.CreateWithdrawal(ctx, newWithdrawal(c.ID, "ext-concurrent"), noEnqueue)
			if err != nil {
				t.Errorf("post %d: %v", i, err)
				return
			}
			if created {
				made.Add(1)
			}
			ids[i] = w.ID
		}()
	}
	wg.Wait()
	if made.Load() != 1 {
		t.Fatalf("%d withdrawals created by 8 identical posts, want 1", made.Load())
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("posts returned different withdrawals: %v", ids)
		}
	}
}

func sentTx(nonce uint64, hash string) *store.SentTx {
	return &store.SentTx{
		Chain: "local", ChainID: 31337, From: "0x1111111111111111111111111111111111111111", Nonce: nonce,
		To: "0x2222222222222222222222222222222222222222", Hash: hash, Raw: []byte{0x02, 0xf8, 0x6b, 0x00, 0xff},
		GasLimit: 21000, MaxFeePerGas: big.NewInt(30e9), MaxPriorityFee: big.NewInt(2e9),
		Kind: "withdrawal", Source: "signer", RequestID: uuid.NewString(), CorrelationID: "c",
	}
}

// A second transaction for a (chain, from, nonce) fails as a duplicate naming uq_sent_tx_nonce: the
// signer matches that name. LAST_INSERT_ID comes back for the auto-increment id.
func TestDuplicateNonce(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	s := migrated(t, m)
	ctx := ctxT(t, 30*time.Second)
	var ids []int64
	for n := range uint64(3) {
		var id int64
		if err := s.InTx(ctx, func(tx *sql.Tx) error {
			var err error
			id, err = s.InsertSentTx(ctx, tx, sentTx(n, fmt.Sprintf("0x%064x", n+1)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if ids[0] < 1 || ids[1] != ids[0]+1 || ids[2] != ids[1]+1 {
		t.Fatalf("insert ids %v", ids)
	}
	got, err := s.GetSentTx(ctx, ids[1])
	if err != nil || got.Nonce != 1 || string(got.Raw) != string(sentTx(1, "").Raw) || got.MaxFeePerGas.Cmp(big.NewInt(30e9)) != 0 {
		t.Fatalf("load sent tx: %+v %v", got, err)
	}
	if n, err := s.NextNonce(ctx, 31337, sentTx(0, "").From); err != nil || n != 3 {
		t.Fatalf("next nonce %d %v", n, err)
	}

	// The same nonce, another payload, inside a transaction that goes on to do more (as the signer's).
	err = s.InTx(ctx, func(tx *sql.Tx) error {
		_, err := s.InsertSentTx(ctx, tx, sentTx(1, "0x"+strings.Repeat("ab", 32)))
		return err
	})
	if !store.IsDuplicate(err) || !strings.Contains(err.Error(), "uq_sent_tx_nonce") {
		t.Fatalf("duplicate nonce error %v: want IsDuplicate and uq_sent_tx_nonce in the text", err)
	}
	t.Logf("duplicate nonce: %v", err)
	var mysqlErr *mysql.MySQLError
	if errors.As(err, &mysqlErr) {
		t.Logf("code %d state %s", mysqlErr.Number, string(mysqlErr.SQLState[:]))
	}
	// The failed transaction left nothing behind, and the next one works.
	var count int
	if err := s.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM tx_attempts").Scan(&count); err != nil || count != 3 {
		t.Fatalf("tx_attempts count %d %v, want 3", count, err)
	}
	// A duplicate raised after earlier writes in the same transaction: the statement fails, the
	// transaction's earlier writes stay until rollback (MySQL statement-level rollback).
	err = s.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.InsertSentTx(ctx, tx, sentTx(10, "0x"+strings.Repeat("cd", 32))); err != nil {
			return err
		}
		_, err := s.InsertSentTx(ctx, tx, sentTx(10, "0x"+strings.Repeat("ef", 32)))
		if !store.IsDuplicate(err) || !strings.Contains(err.Error(), "uq_sent_tx_nonce") {
			return fmt.Errorf("in-transaction duplicate: %w", err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM sent_transactions WHERE nonce = 10").Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("after the failed statement the tx sees %d rows of nonce 10, want 1", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.NonceRecorded(ctx, 31337, sentTx(0, "").From, 10); err != nil || !ok {
		t.Fatalf("nonce 10 recorded=%v %v", ok, err)
	}
}

// A transaction that is left open blocks every other connection (transactions are serial here);
// a waiter fails with 1205 after LockWaitTimeout, which store.InTx retries.
func TestOpenTransactionBlocksOthers(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{LockWaitTimeout: 300 * time.Millisecond})
	s := migrated(t, m)
	ctx := ctxT(t, 30*time.Second)
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO api_clients (name, key_hash, key_prefix) VALUES ('a', ?, 'a')", make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var n int
	err = s.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM api_clients").Scan(&n)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1205 {
		t.Fatalf("read during another connection's transaction: %v (n=%d), want error 1205", err, n)
	}
	t.Logf("waiter got %v after %v", err, time.Since(start))
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM api_clients").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after commit: %d %v", n, err)
	}
	// A connection that quits inside a transaction releases the lock and its writes are gone.
	cfg, err := mysql.ParseDSN(m.DSNFor(dbNameOf(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := connector.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ex := raw.(driver.ExecerContext)
	if _, err := ex.ExecContext(ctx, "START TRANSACTION", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.ExecContext(ctx, "INSERT INTO api_clients (name, key_hash, key_prefix) VALUES ('b', REPEAT('b', 32), 'b')", nil); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM api_clients").Scan(&n)
		if err == nil {
			if n != 1 {
				t.Fatalf("uncommitted row of a dead connection visible: %d rows", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock not released after the connection quit: %v", err)
		}
	}
}

func dbNameOf(t testing.TB, s *store.Store) string {
	var name string
	if err := s.DB.QueryRow("SELECT DATABASE()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// `UTC_TIMESTAMP(6) ± INTERVAL n MICROSECOND` keeps its microseconds in every statement kind the
// queue uses (go-mysql-server alone drops the fraction of the datetime operand).
func TestIntervalArithmeticKeepsMicroseconds(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	s := migrated(t, m)
	ctx := ctxT(t, 30*time.Second)
	diff := func(what, q string, args ...any) {
		t.Helper()
		var d int64
		if err := s.DB.QueryRowContext(ctx, q, args...).Scan(&d); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if d != 1_500_000 {
			t.Errorf("%s: %d µs, want 1500000", what, d)
		}
	}
	for range 3 { // the fraction of the current time varies: a truncation shows most of the time
		diff("select, bound interval", "SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)", 1_500_000)
		diff("select, literal interval", "SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6) - INTERVAL 1500000 MICROSECOND, UTC_TIMESTAMP(6))")
		diff("select, interval first", "SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), INTERVAL 1500000 MICROSECOND + UTC_TIMESTAMP(6))")
		if _, err := s.DB.ExecContext(ctx, "DELETE FROM queue_dedup"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB.ExecContext(ctx, `INSERT INTO queue_messages (queue, msg_id, body, visible_at, created_at)
			VALUES ('q', 'm', 'b', UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, UTC_TIMESTAMP(6))`, 1_500_000); err != nil {
			t.Fatal(err)
		}
		diff("insert", "SELECT TIMESTAMPDIFF(MICROSECOND, created_at, visible_at) FROM queue_messages WHERE msg_id = 'm'")
		if _, err := s.DB.ExecContext(ctx, `UPDATE queue_messages SET created_at = UTC_TIMESTAMP(6),
			visible_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND WHERE msg_id = 'm'`, 1_500_000); err != nil {
			t.Fatal(err)
		}
		diff("update", "SELECT TIMESTAMPDIFF(MICROSECOND, created_at, visible_at) FROM queue_messages WHERE msg_id = 'm'")
		for range 2 { // the second is the ON DUPLICATE KEY UPDATE path
			if _, err := s.DB.ExecContext(ctx, `INSERT INTO queue_dedup (queue, dedup_id, token, expires_at) VALUES ('q', 'd', 't', UTC_TIMESTAMP(6))
				ON DUPLICATE KEY UPDATE expires_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, token = CAST(UTC_TIMESTAMP(6) AS CHAR(32))`, 1_500_000); err != nil {
				t.Fatal(err)
			}
		}
		diff("upsert", "SELECT TIMESTAMPDIFF(MICROSECOND, CAST(token AS DATETIME(6)), expires_at) FROM queue_dedup WHERE dedup_id = 'd'")
		if _, err := s.DB.ExecContext(ctx, "DELETE FROM queue_messages"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(137 * time.Millisecond)
	}
}

// Figures: 1000 CreateWithdrawal calls from one goroutine (each a transaction of two inserts, then a
// read), then 400 more from four. go-mysql-server's memory tables copy a table on every statement that touches it, so
// the cost of a statement grows with the table: the rate is logged per quarter.
func TestCreateWithdrawalThroughput(t *testing.T) {
	m := startMySQL(t, embedded.MySQLOptions{})
	s := migrated(t, m)
	ctx := ctxT(t, 5*time.Minute)
	c, err := s.EnsureAPIClient(ctx, "exchange", "sk_perf")
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	start := time.Now()
	lap := start
	for i := range n {
		if _, created, err := s.CreateWithdrawal(ctx, newWithdrawal(c.ID, fmt.Sprintf("perf-%d", i)), noEnqueue); err != nil || !created {
			t.Fatalf("create %d: %v %v", i, created, err)
		}
		if (i+1)%(n/4) == 0 {
			t.Logf("withdrawals %4d-%4d: %6.0f/s", i+1-n/4, i, float64(n/4)/time.Since(lap).Seconds())
			lap = time.Now()
		}
	}
	el := time.Since(start)
	t.Logf("1 goroutine: %d CreateWithdrawal in %v = %.0f/s", n, el, n/el.Seconds())

	const more = 400
	start = time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range more / 4 {
				if _, _, err := s.CreateWithdrawal(ctx, newWithdrawal(c.ID, fmt.Sprintf("perf4-%d-%d", g, i)), noEnqueue); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el = time.Since(start)
	t.Logf("4 goroutines: %d more CreateWithdrawal in %v = %.0f/s (transactions are serial)", more, el, more/el.Seconds())
	var rows int
	if err := s.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM withdrawals").Scan(&rows); err != nil || rows != n+more {
		t.Fatalf("%d withdrawals stored, %v; want %d", rows, err, n+more)
	}
}
