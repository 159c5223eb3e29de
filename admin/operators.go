package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/argon2"

	"github.com/sluice-custody/sluice/internal/store"
)

// MinPasswordLength is the shortest operator password accepted.
const MinPasswordLength = 12

// argon2id parameters (RFC 9106's second recommended option, scaled to an interactive login on a small
// host: 64 MiB would let a burst of logins exhaust the API's memory).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// rank orders the roles: each can do what those below it can.
var rank = map[Role]int{RoleViewer: 1, RoleOperator: 2, RoleApprover: 3, RoleAdmin: 4}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if rank[r] == 0 {
		return "", fmt.Errorf("role %q is not one of viewer, operator, approver, admin", s)
	}
	return r, nil
}

// atLeast reports whether r may do what need may.
func (r Role) atLeast(need Role) bool { return rank[r] >= rank[need] }

// HashPassword returns the argon2id PHC string of password with a fresh salt.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// checkPassword reports whether password matches the PHC string, comparing in constant time; the
// parameters are read from the string, so hashes made with older parameters still verify.
func checkPassword(phc, password string) bool {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<21 || t > 64 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is verified against when the username is unknown, so that an unknown name takes as long
// as a wrong password and cannot be told apart by timing.
var dummyHash = func() string {
	h, err := HashPassword("not a password of anyone")
	if err != nil {
		panic(err)
	}
	return h
}()

// checkNewPassword refuses passwords too short to resist guessing.
func checkNewPassword(pw string) error {
	if utf8.RuneCountInString(pw) < MinPasswordLength {
		return unprocessable(CodeWeakPassword, "password", fmt.Sprintf("password must be at least %d characters", MinPasswordLength))
	}
	if len(pw) > 1024 {
		return unprocessable(CodeWeakPassword, "password", "password must be at most 1024 bytes")
	}
	return nil
}

// checkUsername accepts 1–64 characters of [a-z0-9._-] (lower case: one person, one name).
func checkUsername(u string) error {
	if u == "" {
		return unprocessable(CodeRequired, "username", "username is required")
	}
	if len(u) > 64 {
		return unprocessable(CodeInvalid, "username", "username must be at most 64 characters")
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return unprocessable(CodeInvalid, "username", "username may contain only a-z, 0-9, '.', '_' and '-'")
		}
	}
	return nil
}

// operatorRow is an operator with its password hash (never sent).
type operatorRow struct {
	Operator
	hash string
}

const operatorCols = `username, password_hash, role, disabled, created_at, last_login`

func scanOperator(sc interface{ Scan(...any) error }) (*operatorRow, error) {
	var o operatorRow
	var last sql.NullTime
	var role string
	if err := sc.Scan(&o.Username, &o.hash, &role, &o.Disabled, &o.CreatedAt, &last); err != nil {
		return nil, err
	}
	o.Role = Role(role)
	if last.Valid {
		t := last.Time
		o.LastLogin = &t
	}
	return &o, nil
}

func getOperator(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, username string) (*operatorRow, error) {
	o, err := scanOperator(q.QueryRowContext(ctx, `SELECT `+operatorCols+` FROM operators WHERE username = ?`, username))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read operator %s: %w", username, err)
	}
	return o, nil
}

// ListOperators returns every operator, by username.
func ListOperators(ctx context.Context, st *store.Store) ([]Operator, error) {
	rows, err := st.DB.QueryContext(ctx, `SELECT `+operatorCols+` FROM operators ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	defer rows.Close()
	out := []Operator{}
	for rows.Next() {
		o, err := scanOperator(rows)
		if err != nil {
			return nil, fmt.Errorf("list operators: %w", err)
		}
		out = append(out, o.Operator)
	}
	return out, rows.Err()
}

// Actor names who changes operators in the audit log: an operator of the API, or the command line
// (`sluice ops operator …`, which has no operator yet).
type Actor struct {
	Operator string // e.g. "alice", or "cli:root"
	Remote   string // e.g. "10.0.0.7", or "local"
}

// AddOperator creates an operator (the bootstrap of `sluice ops operator add` and POST
// /admin/v1/operators) and audits it. A bad username, role or password is an *Error naming the field;
// an existing username is a 409 operator_exists.
func AddOperator(ctx context.Context, st *store.Store, by Actor, username, password string, role Role) (Operator, error) {
	if err := checkUsername(username); err != nil {
		return Operator{}, err
	}
	if rank[role] == 0 {
		return Operator{}, unprocessable(CodeInvalid, "role", fmt.Sprintf("role %q is not one of viewer, operator, approver, admin", role))
	}
	if err := checkNewPassword(password); err != nil {
		return Operator{}, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return Operator{}, err
	}
	var op Operator
	err = st.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO operators (username, password_hash, role) VALUES (?, ?, ?)`,
			username, hash, string(role)); err != nil {
			if store.IsDuplicate(err) {
				return conflict(CodeOperatorExists, fmt.Sprintf("operator %s exists (reset its password instead)", username))
			}
			return fmt.Errorf("insert operator: %w", err)
		}
		o, err := getOperator(ctx, tx, username)
		if err != nil {
			return err
		}
		op = o.Operator
		return appendAudit(ctx, tx, auditRecord{Operator: by.Operator, Remote: by.Remote, Kind: KindOperator,
			What: "operator.add " + username, Detail: map[string]any{"username": username, "role": string(role)}, Outcome: "ok"})
	})
	return op, err
}

// DisableOperator disables an operator: no login, its refresh tokens revoked, and its access tokens
// refused from the next role check (within RoleCacheTTL).
func DisableOperator(ctx context.Context, st *store.Store, by Actor, username string) (Operator, error) {
	var op Operator
	err := st.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE operators SET disabled = 1, updated_at = CURRENT_TIMESTAMP(6) WHERE username = ?`, username)
		if err != nil {
			return fmt.Errorf("disable operator: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := getOperator(ctx, tx, username); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE operator_refresh_tokens SET revoked = 1 WHERE username = ?`, username); err != nil {
			return fmt.Errorf("revoke refresh tokens: %w", err)
		}
		o, err := getOperator(ctx, tx, username)
		if err != nil {
			return err
		}
		op = o.Operator
		return appendAudit(ctx, tx, auditRecord{Operator: by.Operator, Remote: by.Remote, Kind: KindOperator,
			What: "operator.disable " + username, Detail: map[string]any{"username": username}, Outcome: "ok"})
	})
	return op, err
}

// ResetOperator sets a new password (and, when role is not empty, a new role), enables the operator
// again and revokes its refresh tokens.
func ResetOperator(ctx context.Context, st *store.Store, by Actor, username, password string, role Role) (Operator, error) {
	if err := checkNewPassword(password); err != nil {
		return Operator{}, err
	}
	if role != "" && rank[role] == 0 {
		return Operator{}, unprocessable(CodeInvalid, "role", fmt.Sprintf("role %q is not one of viewer, operator, approver, admin", role))
	}
	hash, err := HashPassword(password)
	if err != nil {
		return Operator{}, err
	}
	var op Operator
	err = st.InTx(ctx, func(tx *sql.Tx) error {
		cur, err := getOperator(ctx, tx, username)
		if err != nil {
			return err
		}
		if role == "" {
			role = cur.Role
		}
		if _, err := tx.ExecContext(ctx, `UPDATE operators SET password_hash = ?, role = ?, disabled = 0, updated_at = CURRENT_TIMESTAMP(6)
			WHERE username = ?`, hash, string(role), username); err != nil {
			return fmt.Errorf("reset operator: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE operator_refresh_tokens SET revoked = 1 WHERE username = ?`, username); err != nil {
			return fmt.Errorf("revoke refresh tokens: %w", err)
		}
		o, err := getOperator(ctx, tx, username)
		if err != nil {
			return err
		}
		op = o.Operator
		return appendAudit(ctx, tx, auditRecord{Operator: by.Operator, Remote: by.Remote, Kind: KindOperator,
			What: "operator.reset " + username, Detail: map[string]any{"username": username, "role": string(role)}, Outcome: "ok"})
	})
	return op, err
}

// HTTP handlers (admin role).

func (s *Server) actor(c echo.Context) Actor { return Actor{Operator: who(c), Remote: c.RealIP()} }

func (s *Server) listOperators(c echo.Context) error {
	ops, err := ListOperators(c.Request().Context(), s.st)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ops)
}

type createOperatorRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

func (s *Server) createOperator(c echo.Context) error {
	var req createOperatorRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Role == "" {
		return unprocessable(CodeRequired, "role", "role is required (viewer, operator, approver or admin)")
	}
	op, err := AddOperator(c.Request().Context(), s.st, s.actor(c), req.Username, req.Password, Role(req.Role))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, op)
}

func (s *Server) disableOperator(c echo.Context) error {
	u := c.Param("username")
	if u == who(c) {
		return conflict(CodeConflict, "an operator cannot disable itself (another admin can)")
	}
	op, err := DisableOperator(c.Request().Context(), s.st, s.actor(c), u)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no operator " + u)
	}
	if err != nil {
		return err
	}
	s.roles.forget(u)
	return c.JSON(http.StatusOK, op)
}

type resetOperatorRequest struct {
	Password string `json:"password"`
	Role     string `json:"role,omitempty"`
}

func (s *Server) resetOperator(c echo.Context) error {
	var req resetOperatorRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	u := c.Param("username")
	op, err := ResetOperator(c.Request().Context(), s.st, s.actor(c), u, req.Password, Role(req.Role))
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no operator " + u)
	}
	if err != nil {
		return err
	}
	s.roles.forget(u)
	return c.JSON(http.StatusOK, op)
}

func (s *Server) me(c echo.Context) error { return c.JSON(http.StatusOK, operatorOf(c)) }

// touchLogin records a successful login's time.
func (s *Server) touchLogin(ctx context.Context, username string, at time.Time) {
	if _, err := s.st.DB.ExecContext(ctx, `UPDATE operators SET last_login = ? WHERE username = ?`, at.UTC(), username); err != nil {
		s.log.Warn("record last login", "operator", username, "err", err)
	}
}
