package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func readYAML(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// alertRules are the alerting rules of deploy/prometheus/alerts.yml.
func alertRules(t testing.TB) []rule {
	var f ruleFile
	readYAML(t, filepath.Join(repoRoot(t), "deploy/prometheus/alerts.yml"), &f)
	var out []rule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("alerts.yml has no alerting rule")
	}
	return out
}

// TestAlertRules runs `promtool check rules` and `promtool test rules` on the alert rules.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	promtool := tool(t, "promtool", "prometheus")
	dir := filepath.Join(repoRoot(t), "deploy/prometheus")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml", "thresholds.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestEveryAlertIsUnitTested: each alert of alerts.yml has a promtool case where it fires and one where it
// does not, so that a rule added without tests fails here.
func TestEveryAlertIsUnitTested(t *testing.T) {
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join(repoRoot(t), "deploy/prometheus/alerts_test.yml"), &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, r := range alertRules(t) {
		if !fires[r.Alert] {
			t.Errorf("%s: no promtool test where it fires", r.Alert)
		}
		if !quiet[r.Alert] {
			t.Errorf("%s: no promtool test where it does not fire", r.Alert)
		}
	}
}

// runbookBase is where every alert's runbook_url points: a section of docs/operations.md.
const runbookBase = "https://github.com/sluice-custody/sluice/blob/main/docs/operations.md#"

// TestRunbooksExist: every alert has a summary, a severity and a runbook_url naming a section of
// docs/operations.md that exists (GitHub's anchor of a heading: lower case, spaces as dashes).
func TestRunbooksExist(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs/operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(string(doc), -1) {
		anchors[githubAnchor(m[1])] = true
	}
	var names []string
	for _, r := range alertRules(t) {
		names = append(names, r.Alert)
		if r.Annotations["summary"] == "" {
			t.Errorf("%s: no summary", r.Alert)
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
		}
		anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
		if !ok {
			t.Errorf("%s: runbook_url %q does not start with %s", r.Alert, r.Annotations["runbook_url"], runbookBase)
			continue
		}
		if anchor != strings.ToLower(r.Alert) {
			t.Errorf("%s: runbook anchor %q, want %q", r.Alert, anchor, strings.ToLower(r.Alert))
		}
		if !anchors[anchor] {
			t.Errorf("%s: docs/operations.md has no section #%s", r.Alert, anchor)
		}
	}
	sort.Strings(names)
	t.Logf("%d alerts: %s", len(names), strings.Join(names, ", "))
}

// githubAnchor is the anchor GitHub gives a Markdown heading.
func githubAnchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}
