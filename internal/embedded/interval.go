package embedded

import (
	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/analyzer"
	"github.com/dolthub/go-mysql-server/sql/expression"
	"github.com/dolthub/go-mysql-server/sql/expression/function"
	"github.com/dolthub/go-mysql-server/sql/plan"
	"github.com/dolthub/go-mysql-server/sql/transform"
	"github.com/dolthub/go-mysql-server/sql/types"
)

// go-mysql-server v0.20 evaluates `<datetime> + INTERVAL n unit` (and `-`) as DATETIME(0): the
// operand's fractional seconds are dropped before the interval is added (Arithmetic.Type returns
// types.Datetime, with a TODO about precision), so `UTC_TIMESTAMP(6) + INTERVAL 2000000 MICROSECOND`
// comes out up to a second early. The MySQL queue computes every visibility, delay and dedup expiry
// that way, so messages would reappear or become deliverable up to 1 s too soon. DATE_ADD and DATE_SUB
// keep the precision; this analyzer rule rewrites the operator form into them, for datetime and
// timestamp operands (what MySQL computes is the same).
//
// The rule goes into analyzer.AlwaysBeforeDefault, go-mysql-server's (empty) extension point for
// integrators' rules: it is the one list the analyzer also applies to single-table UPDATE and DELETE
// and to INSERT … VALUES, which take a shortcut past rules added with Builder.AddPreAnalyzeRule. It is
// process-wide, which is harmless: the rule only makes the arithmetic agree with MySQL.

// intervalRuleID names the rule in go-mysql-server's analyzer; any id unused by its own rules.
const intervalRuleID analyzer.RuleId = 1 << 20

func init() {
	analyzer.AlwaysBeforeDefault = append(analyzer.AlwaysBeforeDefault, analyzer.Rule{Id: intervalRuleID, Apply: intervalArithmeticRule})
}

func intervalArithmeticRule(_ *sql.Context, _ *analyzer.Analyzer, n sql.Node, _ *plan.Scope, _ analyzer.RuleSelector, _ *sql.QueryFlags) (sql.Node, transform.TreeIdentity, error) {
	return transform.NodeExprsWithOpaque(n, rewriteIntervalArithmetic)
}

func rewriteIntervalArithmetic(e sql.Expression) (sql.Expression, transform.TreeIdentity, error) {
	a, ok := e.(*expression.Arithmetic)
	if !ok {
		return e, transform.SameTree, nil
	}
	left, right := a.LeftChild, a.RightChild
	iv, ok := right.(*expression.Interval)
	date := left
	if !ok && a.Op == "+" {
		iv, ok = left.(*expression.Interval) // INTERVAL n unit + date
		date = right
	}
	if !ok || !isDatetime(date.Type()) {
		return e, transform.SameTree, nil
	}
	var (
		out sql.Expression
		err error
	)
	switch a.Op {
	case "+":
		out, err = function.NewDateAdd(date, iv)
	case "-":
		out, err = function.NewDateSub(date, iv)
	default:
		return e, transform.SameTree, nil
	}
	if err != nil {
		return nil, transform.SameTree, err
	}
	return out, transform.NewTree, nil
}

func isDatetime(t sql.Type) bool { return types.IsDatetimeType(t) || types.IsTimestampType(t) }
