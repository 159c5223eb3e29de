package chaos

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sluice-custody/sluice/internal/queue"
)

// secretKey is a private key the run generated (the hot wallet's, the funder's): its bytes must never
// appear in a log, a metric, a database row or a queue message.
type secretKey struct {
	what string
	b    []byte
}

// keyForm is one way a key could be written out.
type keyForm struct {
	key, form string
	needle    []byte
	fold      bool // compare case-insensitively (hex)
}

// keyForms lists how each key may leak: hex (with or without 0x, any case: the bare lower-case hex is a
// substring of every one of them once the haystack is lower-cased), base64 (standard and URL alphabets,
// padded or not: the 43 characters before the padding are in both) and the raw 32 bytes.
func keyForms(keys []secretKey) []keyForm {
	var out []keyForm
	for _, k := range keys {
		out = append(out,
			keyForm{k.what, "hex", []byte(hex.EncodeToString(k.b)), true},
			keyForm{k.what, "base64", []byte(base64.RawStdEncoding.EncodeToString(k.b)), false},
			keyForm{k.what, "base64url", []byte(base64.RawURLEncoding.EncodeToString(k.b)), false},
			keyForm{k.what, "raw bytes", bytes.Clone(k.b), false},
		)
	}
	return out
}

// KeyScan is what the key-material scan read and found.
type KeyScan struct {
	LogFiles, LogBytes int
	MetricsScrapes     int
	Tables, Rows       int
	QueueMessages      int // read off the SQS queues (the MySQL queue's messages are rows, counted above)
	Hits               []string
}

func (ks KeyScan) String() string {
	return fmt.Sprintf("%d log files (%d KiB), %d metrics scrapes, %d rows in %d tables, %d queue messages: %d hits",
		ks.LogFiles, ks.LogBytes/1024, ks.MetricsScrapes, ks.Rows, ks.Tables, ks.QueueMessages, len(ks.Hits))
}

// keyScanner searches data for every form of every key.
type keyScanner struct {
	forms []keyForm
	out   *KeyScan
}

// scan records a hit, naming where and which key in which form, never the key itself.
func (s keyScanner) scan(where string, data []byte) {
	var lower []byte
	for _, f := range s.forms {
		hay := data
		if f.fold {
			if lower == nil {
				lower = bytes.ToLower(data)
			}
			hay = lower
		}
		if i := bytes.Index(hay, f.needle); i >= 0 {
			loc := where
			if strings.HasPrefix(where, "logs/") {
				loc = fmt.Sprintf("%s line %d", where, bytes.Count(data[:i], []byte{'\n'})+1)
			}
			s.out.Hits = append(s.out.Hits, fmt.Sprintf("the %s key (%s) is in %s", f.key, f.form, loc))
		}
	}
}

// scrapeMetrics takes one /metrics scrape of every running instance; called just before the services
// stop, it holds every counter and label they built up.
func (r *run) scrapeMetrics(ctx context.Context) map[string][]byte {
	out := map[string][]byte{}
	c := &http.Client{Timeout: 5 * time.Second}
	for _, p := range r.allProcs() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metrics, nil)
		if err != nil {
			continue
		}
		resp, err := c.Do(req)
		if err != nil {
			r.logf("key scan: no /metrics scrape of %s: %v", p.name, err)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			out[p.name] = b
		}
	}
	return out
}

// scanForKeys searches the run's logs, the metrics scrapes, every row of every table of the run's
// database (the MySQL queue's messages and the outbox included) and, on SQS, every message left on any
// queue, for the keys the run generated. The services must be stopped (their logs complete).
func (r *run) scanForKeys(ctx context.Context, scrapes map[string][]byte) (KeyScan, error) {
	var ks KeyScan
	s := keyScanner{forms: keyForms(r.keys), out: &ks}

	logDir := filepath.Join(r.o.Dir, "logs")
	entries, err := os.ReadDir(logDir)
	if err != nil {
		return ks, fmt.Errorf("key scan: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(logDir, e.Name()))
		if err != nil {
			return ks, fmt.Errorf("key scan: %w", err)
		}
		ks.LogFiles++
		ks.LogBytes += len(b)
		s.scan("logs/"+e.Name(), b)
	}

	names := make([]string, 0, len(scrapes))
	for n := range scrapes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ks.MetricsScrapes++
		s.scan("the /metrics scrape of "+n, scrapes[n])
	}

	if err := r.scanTables(ctx, s); err != nil {
		return ks, err
	}
	if r.sqs != nil {
		if err := r.scanSQS(ctx, s); err != nil {
			return ks, err
		}
	}
	return ks, nil
}

func (r *run) scanTables(ctx context.Context, s keyScanner) error {
	rows, err := r.db.DB.QueryContext(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name`, r.dbName)
	if err != nil {
		return fmt.Errorf("key scan: list tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if len(tables) == 0 {
		return fmt.Errorf("key scan: database %s has no tables", r.dbName)
	}
	for _, t := range tables {
		if err := r.scanTable(ctx, s, t); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) scanTable(ctx context.Context, s keyScanner, table string) error {
	rows, err := r.db.DB.QueryContext(ctx, "SELECT * FROM `"+strings.ReplaceAll(table, "`", "``")+"`")
	if err != nil {
		return fmt.Errorf("key scan: read %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	s.out.Tables++
	cells := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range cells {
		ptrs[i] = &cells[i]
	}
	n := 0
	for rows.Next() {
		n++
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("key scan: read %s: %w", table, err)
		}
		for i, c := range cells {
			if len(c) > 0 {
				s.scan(fmt.Sprintf("table %s, row %d, column %s", table, n, cols[i]), c)
			}
		}
	}
	s.out.Rows += n
	return rows.Err()
}

// scanSQS reads every message left on the run's SQS queues (work queues and DLQs). The services are
// stopped, so nothing else receives them.
func (r *run) scanSQS(ctx context.Context, s keyScanner) error {
	for _, q := range queue.AllQueues() {
		seen := map[string]bool{}
		for range 100 {
			msgs, err := r.sqs.Receive(ctx, q, 10, time.Minute, 0)
			if err != nil {
				return fmt.Errorf("key scan: %w", err)
			}
			fresh := 0
			for _, m := range msgs {
				if seen[m.ID] {
					continue
				}
				seen[m.ID] = true
				fresh++
				s.out.QueueMessages++
				s.scan(fmt.Sprintf("SQS queue %s, message %s", q, m.ID), m.Body)
			}
			if fresh == 0 {
				break
			}
		}
	}
	return nil
}
