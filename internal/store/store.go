// Package store owns Sluice's state in MySQL/MariaDB: withdrawals and their history, sent transactions
// and their attempts, API clients. Every withdrawal status change goes through Transition, a conditional
// update that only one worker can win, and leaves a history row saying why.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-custody/sluice/migrations"
)

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a guarded update finds the row in another state than expected.
var ErrConflict = errors.New("state changed concurrently")

// Store wraps the database handle.
type Store struct {
	DB *sql.DB

	observer Observer     // nil: transitions are not reported
	tracer   trace.Tracer // nil: transactions are not traced

	// pending holds the transitions made inside transactions InTx has not committed yet: they are
	// reported once the transaction commits, and forgotten when it rolls back.
	pendingMu sync.Mutex
	pending   map[*sql.Tx][]noted
}

// Option instruments a Store.
type Option func(*Store)

// WithObserver reports every committed status change to o.
func WithObserver(o Observer) Option { return func(s *Store) { s.observer = o } }

// WithTracer makes a span of every transaction InTx runs.
func WithTracer(t trace.Tracer) Option { return func(s *Store) { s.tracer = t } }

// Open connects to dsn (go-sql-driver form), forcing the settings the code relies on: parsed times in
// UTC. Transactions run READ COMMITTED (set per transaction in InTx: MariaDB and MySQL name the session
// variable differently), so a conditional update always sees the latest committed row.
func Open(ctx context.Context, dsn string, maxOpen int, opts ...Option) (*Store, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database dsn: %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	// Arguments are interpolated by the driver into one text query: a server-side prepared statement
	// costs a PREPARE round trip and a CLOSE packet per statement, which tripled the packets of the
	// API's create transaction and kept the policy row locked that much longer (docs/integration.md,
	// intake). The driver escapes for the connection's character set and refuses to interpolate for the
	// few multi-byte sets where that is unsafe (it prepares on the server then); ours is utf8mb4.
	cfg.InterpolateParams = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("database connector: %w", err)
	}
	db := sql.OpenDB(conn)
	if maxOpen > 0 {
		db.SetMaxOpenConns(maxOpen)
		db.SetMaxIdleConns(maxOpen)
	}
	db.SetConnMaxLifetime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	st := &Store{DB: db}
	for _, o := range opts {
		o(st)
	}
	return st, nil
}

// Close closes the pool.
func (s *Store) Close() error { return s.DB.Close() }

// Migrate applies every migration in migrations/.
func (s *Store) Migrate(ctx context.Context) error {
	p, err := goose.NewProvider(goose.DialectMySQL, s.DB, migrations.FS)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.DB.PingContext(ctx) }

// InTx runs fn in a transaction, committing when it returns nil. Deadlocks and lock wait timeouts
// (which InnoDB resolves by rolling back one side) are retried a few times.
func (s *Store) InTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	if s.tracer != nil && trace.SpanContextFromContext(ctx).IsValid() { // alone, a transaction's span is noise
		var span trace.Span
		// fn keeps the caller's ctx (it captures it), so the statements it runs are not children of this
		// span; the span times the whole transaction, retries included.
		_, span = s.tracer.Start(ctx, "db.transaction", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system", "mysql")))
		defer func() {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, "transaction failed")
			}
			span.End()
		}()
	}
	for attempt := 0; attempt < 4; attempt++ {
		if err = s.inTxOnce(ctx, fn); err == nil || !isRetryableTxErr(err) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return err
}

func (s *Store) inTxOnce(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.DB.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	s.track(tx)
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		s.settle(ctx, tx, false)
		return err
	}
	if err := tx.Commit(); err != nil {
		s.settle(ctx, tx, false)
		return fmt.Errorf("commit: %w", err)
	}
	s.settle(ctx, tx, true)
	return nil
}

func mysqlCode(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// IsDuplicate reports a unique-key violation.
func IsDuplicate(err error) bool { return mysqlCode(err) == 1062 }

func isRetryableTxErr(err error) bool {
	c := mysqlCode(err)
	return c == 1213 || c == 1205 // deadlock, lock wait timeout
}

// TryLock takes the database-wide named lock name without waiting and reports whether it got it. The
// lock belongs to one connection, held out of the pool until unlock; if the process dies the server
// drops the connection and the lock with it, so an owner that crashed never blocks the others. Lock
// names are scoped to the database, so databases sharing a server do not share locks.
func (s *Store) TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error) {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", name, err)
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(SHA1(CONCAT(DATABASE(), '/', ?)), 0)`, name).Scan(&got); err != nil {
		discard(conn)
		return nil, false, fmt.Errorf("lock %s: %w", name, err)
	}
	if got.Int64 != 1 {
		conn.Close()
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var released sql.NullInt64
		if err := conn.QueryRowContext(ctx, `SELECT RELEASE_LOCK(SHA1(CONCAT(DATABASE(), '/', ?)))`, name).Scan(&released); err != nil || released.Int64 != 1 {
			// Never hand a connection that may still hold the lock back to the pool.
			discard(conn)
			return
		}
		conn.Close()
	}, true, nil
}

// discard closes conn for good instead of returning it to the pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}
