package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
)

// go-mysql-server reports a unique-key violation as error 1062 with the text "duplicate unique key
// given: [<values>]" and no key name, where MySQL and MariaDB say "Duplicate entry '<values>' for key
// '<key name>'". Code that tells one unique key from another by name (the signer does, for
// uq_sent_tx_nonce) needs the name, so fixDuplicate rewrites the message the MariaDB way: it finds the
// statement's table, then the unique index holding a row with the reported values.

var (
	dupRE    = regexp.MustCompile(`(?s)duplicate (unique|primary) key given: (\[.*\])`)
	insertRE = regexp.MustCompile("(?is)^\\s*(?:/\\*.*?\\*/\\s*)*(?:insert|replace)\\s+(?:(?:low_priority|delayed|high_priority|ignore)\\s+)*(?:into\\s+)?([`\\w.]+)")
	updateRE = regexp.MustCompile("(?is)^\\s*(?:/\\*.*?\\*/\\s*)*update\\s+(?:(?:low_priority|ignore)\\s+)*([`\\w.]+)")
)

func (m *MySQL) fixDuplicate(connID uint32, query string, err error) error {
	if err == nil {
		return nil
	}
	var se *mysql.SQLError
	if !errors.As(err, &se) || se.Num != mysql.ERDupEntry {
		return err
	}
	match := dupRE.FindStringSubmatch(se.Message)
	if match == nil {
		return err
	}
	key, entry := "PRIMARY", strings.Trim(match[2], "[]")
	if match[1] == "unique" {
		k, e, ok := m.findUniqueKey(connID, query, match[2])
		if !ok {
			return err
		}
		key, entry = k, e
	}
	return mysql.NewSQLError(mysql.ERDupEntry, "23000", "Duplicate entry '%s' for key '%s'",
		strings.ReplaceAll(entry, "%", "%%"), strings.ReplaceAll(key, "%", "%%"))
}

// findUniqueKey looks, in the connection's own view of the data (its transaction included), for the
// unique index of the statement's table (or, failing that, of any table of the current database)
// holding a row whose index values print as reported. It returns the index name and the values joined
// with '-', as MariaDB prints them.
func (m *MySQL) findUniqueKey(connID uint32, query, reported string) (string, string, bool) {
	s := m.session(connID)
	if s == nil {
		return "", "", false
	}
	ctx := sql.NewContext(context.Background(), sql.WithSession(s))
	dbName, table := s.GetCurrentDatabase(), ""
	re := insertRE
	if !re.MatchString(query) {
		re = updateRE
	}
	if mt := re.FindStringSubmatch(query); mt != nil {
		parts := strings.Split(strings.ReplaceAll(mt[1], "`", ""), ".")
		table = parts[len(parts)-1]
		if len(parts) == 2 {
			dbName = parts[0]
		}
	}
	db, err := m.pro.Database(ctx, dbName)
	if err != nil {
		return "", "", false
	}
	tables := []string{table}
	if table == "" {
		if tables, err = db.GetTableNames(ctx); err != nil {
			return "", "", false
		}
	}
	for _, name := range tables {
		t, ok, err := db.GetTableInsensitive(ctx, name)
		if err != nil || !ok {
			continue
		}
		if k, e, ok := uniqueKeyWith(ctx, t, reported); ok {
			return k, e, true
		}
	}
	return "", "", false
}

func uniqueKeyWith(ctx *sql.Context, t sql.Table, reported string) (string, string, bool) {
	ia, ok := t.(sql.IndexAddressable)
	if !ok {
		return "", "", false
	}
	idxs, err := ia.GetIndexes(ctx)
	if err != nil {
		return "", "", false
	}
	sch := t.Schema()
	type candidate struct {
		name string
		cols []int
	}
	var cands []candidate
	for _, idx := range idxs {
		if !idx.IsUnique() || strings.EqualFold(idx.ID(), "PRIMARY") {
			continue
		}
		var cols []int
		for _, expr := range idx.Expressions() {
			col := expr[strings.LastIndexByte(expr, '.')+1:]
			i := sch.IndexOfColName(col)
			if i < 0 {
				cols = nil
				break
			}
			cols = append(cols, i)
		}
		if cols != nil {
			cands = append(cands, candidate{idx.ID(), cols})
		}
	}
	if len(cands) == 0 {
		return "", "", false
	}
	parts, err := t.Partitions(ctx)
	if err != nil {
		return "", "", false
	}
	defer parts.Close(ctx)
	for {
		p, err := parts.Next(ctx)
		if err != nil {
			return "", "", false // io.EOF: no row matched
		}
		rows, err := t.PartitionRows(ctx, p)
		if err != nil {
			return "", "", false
		}
		for {
			row, err := rows.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				rows.Close(ctx)
				return "", "", false
			}
			for _, c := range cands {
				if printed(row, c.cols, "") == reported {
					rows.Close(ctx)
					return c.name, strings.Trim(printed(row, c.cols, "-"), "[]"), true
				}
			}
		}
		rows.Close(ctx)
	}
}

// printed formats the values at cols as go-mysql-server's memory tables do in their unique-key errors
// (with sep "", which is what they use), between brackets.
func printed(row sql.Row, cols []int, sep string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, c := range cols {
		if i > 0 {
			b.WriteString(sep)
		}
		fmt.Fprintf(&b, "%v", row[c])
	}
	b.WriteByte(']')
	return b.String()
}
