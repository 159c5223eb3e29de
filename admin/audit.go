package admin

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sluice-custody/sluice/internal/store"
)

// Audit kinds.
const (
	KindLogin       = "login"
	KindLoginFailed = "login_failed"
	KindRead        = "read"
	KindAction      = "action"
	KindApproval    = "approval"
	KindOperator    = "operator"
)

// auditRecord is what a caller appends; id, time and hashes are the appender's.
type auditRecord struct {
	Operator string
	Remote   string
	Kind     string
	What     string
	Detail   map[string]any
	Outcome  string
}

// auditTime is how a row's time enters its hash: microseconds, as DATETIME(6) stores it.
const auditTime = "2006-01-02T15:04:05.000000Z"

// auditHash is the row hash: SHA-256 over the fields in this order, each written as its length in
// bytes, ':', the bytes, ';' — so no choice of field values can make two different rows encode alike.
// detail is the stored JSON text itself (encoding/json of a map: keys sorted), so verification hashes
// exactly what the table holds.
func auditHash(prevHash string, id int64, at time.Time, operator, remote, kind, what, detail, outcome string) string {
	h := sha256.New()
	for _, f := range []string{prevHash, strconv.FormatInt(id, 10), at.UTC().Format(auditTime), operator, remote, kind, what, detail, outcome} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// clip keeps a column's value within its width (the hash covers what is stored).
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// appendAudit appends one row inside tx: the audit_head row lock serializes appends across processes,
// and the row commits (or rolls back) with what it records.
func appendAudit(ctx context.Context, tx *sql.Tx, r auditRecord) error {
	var lastID int64
	var lastHash string
	if err := tx.QueryRowContext(ctx, `SELECT last_id, last_hash FROM audit_head WHERE id = 1 FOR UPDATE`).Scan(&lastID, &lastHash); err != nil {
		return fmt.Errorf("lock audit head: %w", err)
	}
	detail := []byte("{}")
	if len(r.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(r.Detail); err != nil {
			return fmt.Errorf("audit detail: %w", err)
		}
	}
	id := lastID + 1
	at := time.Now().UTC().Truncate(time.Microsecond)
	op, remote, kind, what, outcome := clip(r.Operator, 64), clip(r.Remote, 64), clip(r.Kind, 32), clip(r.What, 255), clip(r.Outcome, 64)
	hash := auditHash(lastHash, id, at, op, remote, kind, what, string(detail), outcome)
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (id, at, operator, remote, kind, what, detail, outcome, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, at, op, remote, kind, what, string(detail), outcome, lastHash, hash); err != nil {
		return fmt.Errorf("append audit row: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET last_id = ?, last_hash = ? WHERE id = 1`, id, hash); err != nil {
		return fmt.Errorf("advance audit head: %w", err)
	}
	return nil
}

// audit appends one row in its own transaction.
func (s *Server) audit(ctx context.Context, r auditRecord) error {
	return s.auditTx(ctx, func(tx *sql.Tx) error { return appendAudit(ctx, tx, r) })
}

// auditTx runs a transaction that appends to the audit log. This process's appenders take turns before
// they reach the database: the audit_head row lock serializes appends on MariaDB and MySQL, but the
// embedded server of `sluice dev` does not lock rows, and two appenders there would pick the same id.
func (s *Server) auditTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	return s.st.InTx(ctx, fn)
}

// auditRead records a read of sensitive data by the request's operator (what: e.g. "withdrawal <id>";
// detail: the parameters). The read must not be served when it cannot be recorded, so an error is
// returned for the handler to return.
func (s *Server) auditRead(c echo.Context, what string, detail map[string]any) error {
	return s.audit(c.Request().Context(), auditRecord{Operator: who(c), Remote: c.RealIP(), Kind: KindRead, What: what, Detail: detail, Outcome: "ok"})
}

// VerifyAudit recomputes the chain from the first row and names the first row that is not what was
// appended: edited (its hash does not recompute), reordered (its prev_hash is not the previous row's
// hash), deleted (a gap in the ids, or the log ends before the head's last id).
func VerifyAudit(ctx context.Context, st *store.Store) (AuditVerify, error) {
	var headID int64
	var headHash string
	if err := st.DB.QueryRowContext(ctx, `SELECT last_id, last_hash FROM audit_head WHERE id = 1`).Scan(&headID, &headHash); err != nil {
		return AuditVerify{}, fmt.Errorf("read audit head: %w", err)
	}
	rows, err := st.DB.QueryContext(ctx, `SELECT id, at, operator, remote, kind, what, detail, outcome, prev_hash, hash FROM audit_log ORDER BY id`)
	if err != nil {
		return AuditVerify{}, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	v := AuditVerify{OK: true}
	broken := func(id int64, why string) {
		if v.OK {
			v.OK, v.FirstBrokenID, v.Reason = false, id, why
		}
	}
	var prevID int64
	prevHash := ""
	for rows.Next() {
		var id int64
		var at time.Time
		var op, remote, kind, what, detail, outcome, ph, h string
		if err := rows.Scan(&id, &at, &op, &remote, &kind, &what, &detail, &outcome, &ph, &h); err != nil {
			return AuditVerify{}, fmt.Errorf("read audit row: %w", err)
		}
		v.Rows++
		if !v.OK {
			continue
		}
		switch {
		case id != prevID+1:
			broken(prevID+1, fmt.Sprintf("row %d is missing (the log jumps from %d to %d)", prevID+1, prevID, id))
		case ph != prevHash:
			broken(id, fmt.Sprintf("row %d does not follow row %d (prev_hash differs): rows were removed or reordered", id, prevID))
		case auditHash(ph, id, at, op, remote, kind, what, detail, outcome) != h:
			broken(id, fmt.Sprintf("row %d was changed after it was written (its hash does not recompute)", id))
		}
		prevID, prevHash = id, h
	}
	if err := rows.Err(); err != nil {
		return AuditVerify{}, fmt.Errorf("read audit log: %w", err)
	}
	if v.OK && (prevID != headID || prevHash != headHash) {
		if prevID < headID {
			broken(prevID+1, fmt.Sprintf("rows %d to %d are missing (the log ends before the last row appended)", prevID+1, headID))
		} else {
			broken(headID, fmt.Sprintf("the log does not end at the last row appended (%d)", headID))
		}
	}
	return v, nil
}

func (s *Server) verifyAudit(c echo.Context) error {
	v, err := VerifyAudit(c.Request().Context(), s.st)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// parseLimit reads ?limit= (default def, at most maxN).
func parseLimit(c echo.Context, def, maxN int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxN {
		return 0, badParam("limit", fmt.Sprintf("limit must be an integer from 1 to %d", maxN))
	}
	return n, nil
}

func (s *Server) listAudit(c echo.Context) error {
	limit, err := parseLimit(c, 50, 500)
	if err != nil {
		return err
	}
	q := `SELECT id, at, operator, remote, kind, what, detail, outcome, prev_hash, hash FROM audit_log WHERE 1=1`
	var args []any
	if cur := c.QueryParam("cursor"); cur != "" {
		id, err := strconv.ParseInt(cur, 10, 64)
		if err != nil || id < 1 {
			return badParam("cursor", "cursor is not one this API returned")
		}
		q += ` AND id < ?`
		args = append(args, id)
	}
	if op := c.QueryParam("operator"); op != "" {
		q += ` AND operator = ?`
		args = append(args, op)
	}
	if k := c.QueryParam("kind"); k != "" {
		switch k {
		case KindLogin, KindLoginFailed, KindRead, KindAction, KindApproval, KindOperator:
		default:
			return badParam("kind", "kind must be one of login, login_failed, read, action, approval, operator")
		}
		q += ` AND kind = ?`
		args = append(args, k)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.st.DB.QueryContext(c.Request().Context(), q, args...)
	if err != nil {
		return fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	page := Page[AuditEntry]{Items: []AuditEntry{}}
	for rows.Next() {
		var e AuditEntry
		var detail string
		if err := rows.Scan(&e.ID, &e.At, &e.Operator, &e.Remote, &e.Kind, &e.What, &detail, &e.Outcome, &e.PrevHash, &e.Hash); err != nil {
			return fmt.Errorf("list audit: %w", err)
		}
		if detail != "" && detail != "{}" {
			if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
				// An edited row may hold anything: show it rather than fail the listing.
				e.Detail = map[string]any{"unparsable": detail}
			}
		}
		page.Items = append(page.Items, e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list audit: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.NextCursor = strconv.FormatInt(page.Items[limit-1].ID, 10)
	}
	return c.JSON(http.StatusOK, page)
}
