package ops

import (
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// colour reports whether to colour stdout: only on a terminal, and never when NO_COLOR is set to a
// non-empty value (the no-color.org convention).
func (r *runner) colour() bool {
	return r.env("NO_COLOR") == "" && r.stdoutTTY()
}

// ANSI colours. Every code is 5 bytes and the reset 4, so a column whose every cell (header too) is
// wrapped stays aligned by text/tabwriter, which counts bytes, not what the terminal shows.
const (
	ansiRed     = "\x1b[31m"
	ansiGreen   = "\x1b[32m"
	ansiYellow  = "\x1b[33m"
	ansiDefault = "\x1b[39m"
	ansiReset   = "\x1b[0m"
)

// table prints aligned columns; with colour, the columns named in coloured get each cell wrapped in a
// colour chosen by paint from the cell's text.
type table struct {
	tw      *tabwriter.Writer
	colour  bool
	painted map[int]bool
	headers []string // written before the first row, once paint has said which columns are coloured
}

func (r *runner) table(headers ...string) *table {
	return &table{tw: tabwriter.NewWriter(r.stdout, 0, 4, 2, ' ', 0), colour: r.colour(), painted: map[int]bool{}, headers: headers}
}

// paint marks columns whose cells are coloured by their value (severity, status, ok).
func (t *table) paint(cols ...int) *table {
	for _, c := range cols {
		t.painted[c] = true
	}
	return t
}

func (t *table) row(cells ...string) {
	if h := t.headers; h != nil {
		t.headers = nil
		t.row(h...)
	}
	out := make([]string, len(cells))
	for i, c := range cells {
		c = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
		if t.colour && t.painted[i] {
			c = colourOf(c) + c + ansiReset
		}
		out[i] = c
	}
	fmt.Fprintln(t.tw, strings.Join(out, "\t"))
}

func (t *table) flush() error {
	if h := t.headers; h != nil {
		t.headers = nil
		t.row(h...)
	}
	return t.tw.Flush()
}

// colourOf picks a colour by what a word means to an operator at 3 a.m.
func colourOf(s string) string {
	switch strings.ToLower(s) {
	case "critical", "failed", "frozen", "broken", "rejected", "expired", "yes (at cap)", "dlq":
		return ansiRed
	case "warning", "pending", "awaiting_approval", "stuck":
		return ansiYellow
	case "ok", "done", "confirmed", "approved", "resolved":
		return ansiGreen
	}
	return ansiDefault
}

// paintWord colours one word outside a table.
func (r *runner) paintWord(s string) string {
	if !r.colour() {
		return s
	}
	return colourOf(s) + s + ansiReset
}

// gwei prints a wei amount in gwei with its unit: "31.5 gwei".
func gwei(wei string) string {
	if wei == "" {
		return "-"
	}
	return scaled(wei, 9) + " gwei"
}

// ether prints a wei amount in whole native units (10^18 wei).
func ether(wei string) string {
	if wei == "" {
		return "-"
	}
	return scaled(wei, 18)
}

// scaled divides an integer string by 10^decimals and prints it without trailing zeros.
func scaled(v string, decimals int) string {
	n, ok := new(big.Int).SetString(v, 10)
	if !ok {
		return v
	}
	neg := n.Sign() < 0
	n.Abs(n)
	s := n.String()
	if len(s) <= decimals {
		s = strings.Repeat("0", decimals-len(s)+1) + s
	}
	whole, frac := s[:len(s)-decimals], strings.TrimRight(s[len(s)-decimals:], "0")
	if neg {
		whole = "-" + whole
	}
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

// age prints how long ago t was, compactly: 45s, 12m, 3h4m, 2d3h.
func (r *runner) age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration(r.now().Sub(t))
}

func duration(d time.Duration) string {
	if d < 0 {
		return "in " + duration(-d)
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return strconv.FormatInt(s, 10) + "s"
	case s < 3600:
		return strconv.FormatInt(s/60, 10) + "m"
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}

// parseTime reads an RFC 3339 time the API sent as text; zero when absent or unreadable.
func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// short abbreviates a long hash or address for a table (the full one is in show and --json).
func short(s string) string {
	if len(s) <= 14 {
		return s
	}
	return s[:8] + "…" + s[len(s)-4:]
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// kv prints aligned "key: value" lines.
func kv(w io.Writer, pairs ...string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", pairs[i], dash(pairs[i+1]))
	}
	return tw.Flush()
}
