package deploy_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/sqsq"
)

// tfBlock is a top-level block of the Terraform files: resource, data, variable, output, locals…
type tfBlock struct {
	kind   string   // resource, data, variable, …
	labels []string // type and name
	body   *hclsyntax.Body
}

func (b tfBlock) attr(name string) hclsyntax.Expression {
	if a, ok := b.body.Attributes[name]; ok {
		return a.Expr
	}
	return nil
}

// terraform parses every .tf file of deploy/terraform with HashiCorp's HCL parser.
func terraform(t *testing.T) []tfBlock {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "deploy/terraform/*.tf"))
	if len(files) == 0 {
		t.Fatal("no .tf file in deploy/terraform")
	}
	p := hclparse.NewParser()
	var out []tfBlock
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", f, diags.Error())
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			out = append(out, tfBlock{kind: b.Type, labels: b.Labels, body: b.Body})
		}
	}
	return out
}

func find(blocks []tfBlock, kind string, labels ...string) []tfBlock {
	var out []tfBlock
	for _, b := range blocks {
		if b.kind == kind && slices.Equal(b.labels[:min(len(labels), len(b.labels))], labels) {
			out = append(out, b)
		}
	}
	return out
}

// evalContext has var.* at their defaults (a placeholder for required ones), and each.key when given.
func evalContext(t *testing.T, blocks []tfBlock, eachKey string) *hcl.EvalContext {
	t.Helper()
	vars := map[string]cty.Value{}
	for _, v := range find(blocks, "variable") {
		if d := v.attr("default"); d != nil {
			val, diags := d.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("variable %s default: %s", v.labels[0], diags.Error())
			}
			vars[v.labels[0]] = val
		} else {
			vars[v.labels[0]] = cty.StringVal("<" + v.labels[0] + ">") // required: set per deployment
		}
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}}
	if eachKey != "" {
		ctx.Variables["each"] = cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(eachKey), "value": cty.StringVal(eachKey)})
	}
	return ctx
}

func evalString(t *testing.T, ctx *hcl.EvalContext, e hclsyntax.Expression, what string) string {
	t.Helper()
	if e == nil {
		t.Errorf("%s: not set", what)
		return ""
	}
	v, diags := e.Value(ctx)
	if diags.HasErrors() {
		t.Errorf("%s: %s", what, diags.Error())
		return ""
	}
	switch v.Type() {
	case cty.String:
		return v.AsString()
	case cty.Number:
		return v.AsBigFloat().String()
	case cty.Bool:
		return fmt.Sprint(v.True())
	}
	t.Errorf("%s: %s is not a string, number or bool", what, v.Type().FriendlyName())
	return ""
}

// traversal is a static reference such as aws_sqs_queue.request_dlq.arn, as names.
func traversal(t *testing.T, e hclsyntax.Expression, what string) []string {
	t.Helper()
	tr, diags := hcl.AbsTraversalForExpr(e)
	if diags.HasErrors() {
		t.Errorf("%s: not a static reference: %s", what, diags.Error())
		return nil
	}
	var out []string
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			out = append(out, s.Name)
		case hcl.TraverseAttr:
			out = append(out, s.Name)
		case hcl.TraverseIndex:
			if s.Key.Type() == cty.String {
				out = append(out, "["+s.Key.AsString()+"]")
			}
		}
	}
	return out
}

// TestTerraformQueues checks the SQS queues against internal/queue: every queue of queue.AllQueues and no
// other, named as sqsq names them (prefix, ".fifo" for FIFO queues), the retention, the visibility
// timeout of the configuration's default, and each work queue redriven to queue.DLQFor after
// queue.MaxReceiveCount receives. The prefix is the production configuration's (deploy/k8s).
func TestTerraformQueues(t *testing.T) {
	blocks := terraform(t)
	ctx := evalContext(t, blocks, "")
	prefix := ctx.Variables["var"].GetAttr("queue_prefix").AsString()
	prod := loadConfigMap(t, loadManifests(t, filepath.Join(repoRoot(t), "deploy/k8s/overlays/production")))
	if prod.Queue.SQS.Prefix != prefix {
		t.Errorf("var.queue_prefix %q, the production configuration's queue.sqs.prefix %q", prefix, prod.Queue.SQS.Prefix)
	}
	defaults, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	phys := func(q string) string {
		if sqsq.DefaultFIFO(q) {
			return prefix + q + ".fifo"
		}
		return prefix + q
	}
	byResource := map[string]string{} // resource name → queue name
	byQueue := map[string]tfBlock{}
	for _, b := range find(blocks, "resource", "aws_sqs_queue") {
		name := evalString(t, ctx, b.attr("name"), "aws_sqs_queue."+b.labels[1]+".name")
		byResource[b.labels[1]] = name
		byQueue[name] = b
	}
	var want []string
	for _, q := range queue.AllQueues() {
		want = append(want, phys(q))
	}
	got := make([]string, 0, len(byQueue))
	for n := range byQueue {
		got = append(got, n)
	}
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Terraform queues %v\nthe code's queues %v", got, want)
	}
	for _, q := range queue.AllQueues() {
		b, at := byQueue[phys(q)], "queue "+phys(q)
		fifo := "false"
		if e := b.attr("fifo_queue"); e != nil {
			fifo = evalString(t, ctx, e, at+" fifo_queue")
		}
		if fifo != fmt.Sprint(sqsq.DefaultFIFO(q)) {
			t.Errorf("%s: fifo_queue %s, the code says %v", at, fifo, sqsq.DefaultFIFO(q))
		}
		if r := evalString(t, ctx, b.attr("message_retention_seconds"), at); r != fmt.Sprint(int(queue.Retention/time.Second)) {
			t.Errorf("%s: retention %s s, want %d", at, r, int(queue.Retention/time.Second))
		}
		if v := evalString(t, ctx, b.attr("visibility_timeout_seconds"), at); v != fmt.Sprint(int(defaults.Queue.VisibilityTimeout.Seconds())) {
			t.Errorf("%s: visibility %s s, the configuration's default is %s", at, v, defaults.Queue.VisibilityTimeout)
		}
		rp := b.attr("redrive_policy")
		dlq := queue.DLQFor(q)
		if dlq == "" {
			if rp != nil {
				t.Errorf("%s is a DLQ with a redrive policy", at)
			}
			continue
		}
		call, ok := rp.(*hclsyntax.FunctionCallExpr)
		if !ok || call.Name != "jsonencode" || len(call.Args) != 1 {
			t.Errorf("%s: redrive_policy is not jsonencode({…})", at)
			continue
		}
		obj, ok := call.Args[0].(*hclsyntax.ObjectConsExpr)
		if !ok {
			t.Errorf("%s: redrive_policy is not jsonencode of an object", at)
			continue
		}
		seen := map[string]bool{}
		for _, item := range obj.Items {
			key := evalString(t, nil, item.KeyExpr.(hclsyntax.Expression), at+" redrive key")
			seen[key] = true
			switch key {
			case "maxReceiveCount":
				if n := evalString(t, ctx, item.ValueExpr, at+" maxReceiveCount"); n != fmt.Sprint(queue.MaxReceiveCount) {
					t.Errorf("%s: maxReceiveCount %s, the code's %d", at, n, queue.MaxReceiveCount)
				}
			case "deadLetterTargetArn":
				ref := traversal(t, item.ValueExpr, at+" deadLetterTargetArn")
				if len(ref) != 3 || ref[0] != "aws_sqs_queue" || ref[2] != "arn" || byResource[ref[1]] != phys(dlq) {
					t.Errorf("%s: dead-letters to %v, want the queue %s", at, ref, phys(dlq))
				}
			default:
				t.Errorf("%s: unexpected redrive key %s", at, key)
			}
		}
		if !seen["maxReceiveCount"] || !seen["deadLetterTargetArn"] {
			t.Errorf("%s: redrive policy lacks maxReceiveCount or deadLetterTargetArn", at)
		}
	}
	t.Logf("%d queues match internal/queue (prefix %q)", len(got), prefix)
}

// TestTerraformKeys: the KMS keys are those the production configuration names: a symmetric master key
// and ECC_SECG_P256K1 signing keys for every kms wallet (docs/keys.md).
func TestTerraformKeys(t *testing.T) {
	blocks := terraform(t)
	prod := loadConfigMap(t, loadManifests(t, filepath.Join(repoRoot(t), "deploy/k8s/overlays/production")))
	specs := map[string][2]string{"master": {"ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT"}, "signing": {"SIGN_VERIFY", "ECC_SECG_P256K1"}}
	for name, spec := range specs {
		ks := find(blocks, "resource", "aws_kms_key", name)
		if len(ks) != 1 {
			t.Errorf("no aws_kms_key.%s", name)
			continue
		}
		ctx := evalContext(t, blocks, "x")
		if u := evalString(t, ctx, ks[0].attr("key_usage"), "kms "+name); u != spec[0] {
			t.Errorf("aws_kms_key.%s: key_usage %s, want %s", name, u, spec[0])
		}
		if s := evalString(t, ctx, ks[0].attr("customer_master_key_spec"), "kms "+name); s != spec[1] {
			t.Errorf("aws_kms_key.%s: spec %s, want %s", name, s, spec[1])
		}
	}
	aliases := map[string]bool{}
	for _, a := range find(blocks, "resource", "aws_kms_alias") {
		keys := []string{""}
		if a.attr("for_each") != nil {
			v, diags := a.attr("for_each").Value(evalContext(t, blocks, ""))
			if diags.HasErrors() {
				t.Fatalf("aws_kms_alias.%s for_each: %s", a.labels[1], diags.Error())
			}
			keys = nil
			for it := v.ElementIterator(); it.Next(); {
				_, k := it.Element()
				keys = append(keys, k.AsString())
			}
		}
		for _, k := range keys {
			aliases[evalString(t, evalContext(t, blocks, k), a.attr("name"), "alias "+a.labels[1])] = true
		}
	}
	if m := prod.Keys.SecretsManager.MasterKMSKeyID; !aliases[m] {
		t.Errorf("the production master key %s is not a Terraform alias (%v)", m, aliases)
	}
	prefix := evalContext(t, blocks, "").Variables["var"].GetAttr("wallet_secret_prefix").AsString()
	for _, w := range prod.Keys.Wallets {
		switch w.Backend {
		case config.KeyBackendKMS:
			if !aliases[w.KMSKeyID] {
				t.Errorf("KMS wallet %s: key %s is not a Terraform alias (%v)", w.Address, w.KMSKeyID, aliases)
			}
		case config.KeyBackendSecretsManager:
			if !strings.HasPrefix(w.SecretID, prefix) {
				t.Errorf("wallet %s: secret %s is outside var.wallet_secret_prefix %s (the signer could not read it)", w.Address, w.SecretID, prefix)
			}
		}
	}
}

// keyActions are the IAM actions that reach key material: only the signer's role may hold them.
var keyActions = []string{"secretsmanager:GetSecretValue", "kms:Sign", "kms:Decrypt", "kms:GetPublicKey", "kms:GenerateDataKey"}

// TestTerraformLeastPrivilege: every service has its own role, assumable only by its ServiceAccount (the
// names deploy/k8s binds with IRSA); only the signer's role may read secrets or use the KMS keys; no
// wildcard action and no managed policy anywhere.
func TestTerraformLeastPrivilege(t *testing.T) {
	blocks := terraform(t)
	for _, kind := range []string{"aws_iam_policy", "aws_iam_role_policy_attachment", "aws_iam_policy_attachment", "aws_iam_user", "aws_iam_user_policy"} {
		if len(find(blocks, "resource", kind)) > 0 {
			t.Errorf("resource %s: permissions must be inline role policies, which this test reads", kind)
		}
	}
	docs := map[string][]string{} // policy document → actions
	for _, d := range find(blocks, "data", "aws_iam_policy_document") {
		for _, st := range d.body.Blocks {
			if st.Type != "statement" {
				continue
			}
			if _, deny := st.Body.Attributes["not_actions"]; deny {
				t.Errorf("policy %s: not_actions grants everything else", d.labels[1])
			}
			a, ok := st.Body.Attributes["actions"]
			if !ok {
				t.Errorf("policy %s: a statement without actions", d.labels[1])
				continue
			}
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				t.Errorf("policy %s: actions must be a literal list: %s", d.labels[1], diags.Error())
				continue
			}
			for it := v.ElementIterator(); it.Next(); {
				_, s := it.Element()
				act := s.AsString()
				if strings.Contains(act, "*") {
					t.Errorf("policy %s: wildcard action %s", d.labels[1], act)
				}
				docs[d.labels[1]] = append(docs[d.labels[1]], act)
			}
		}
	}
	services := slices.Clone(k8sServices)
	roleActions := map[string][]string{} // service (or keda) → actions
	for _, p := range find(blocks, "resource", "aws_iam_role_policy") {
		at := "aws_iam_role_policy." + p.labels[1]
		doc := traversal(t, p.attr("policy"), at+".policy")
		if len(doc) != 4 || doc[0] != "data" || doc[1] != "aws_iam_policy_document" || doc[3] != "json" {
			t.Errorf("%s: policy %v is not data.aws_iam_policy_document.X.json", at, doc)
			continue
		}
		var roles []string
		if fe := p.attr("for_each"); fe != nil {
			if ref := traversal(t, fe, at+".for_each"); !slices.Equal(ref, []string{"local", "services"}) {
				t.Errorf("%s: for_each %v, want local.services", at, ref)
			}
			roles = services
		} else {
			ref := traversal(t, p.attr("role"), at+".role")
			switch {
			case len(ref) == 4 && ref[0] == "aws_iam_role" && ref[1] == "service" && ref[3] == "id":
				roles = []string{strings.Trim(ref[2], "[]")}
			case slices.Equal(ref, []string{"aws_iam_role", "keda", "id"}):
				roles = []string{"keda"}
			default:
				t.Errorf("%s: role %v is not aws_iam_role.service[\"…\"].id or aws_iam_role.keda.id", at, ref)
			}
		}
		for _, r := range roles {
			roleActions[r] = append(roleActions[r], docs[doc[2]]...)
		}
	}
	for role, acts := range roleActions {
		for _, a := range keyActions {
			if slices.Contains(acts, a) && role != "signer" {
				t.Errorf("role %s may %s: only the signer may reach keys", role, a)
			}
		}
	}
	for _, a := range []string{"secretsmanager:GetSecretValue", "kms:Decrypt", "kms:Sign"} {
		if !slices.Contains(roleActions["signer"], a) {
			t.Errorf("the signer's role may not %s: it could not load its keys", a)
		}
	}
	// Each service's role is named as deploy/k8s binds it, and trusts that ServiceAccount alone.
	roles := find(blocks, "resource", "aws_iam_role", "service")
	trust := find(blocks, "data", "aws_iam_policy_document", "trust")
	if len(roles) != 1 || len(trust) != 1 {
		t.Fatal("want resource aws_iam_role.service and data aws_iam_policy_document.trust (for_each local.services)")
	}
	var locals map[string]cty.Value
	for _, l := range find(blocks, "locals") {
		if a, ok := l.body.Attributes["services"]; ok {
			v, diags := a.Expr.Value(&hcl.EvalContext{Functions: map[string]function.Function{"toset": identity}})
			if diags.HasErrors() {
				t.Fatalf("local.services: %s", diags.Error())
			}
			locals = map[string]cty.Value{"services": v}
		}
	}
	var tfServices []string
	for it := locals["services"].ElementIterator(); it.Next(); {
		_, v := it.Element()
		tfServices = append(tfServices, v.AsString())
	}
	sort.Strings(tfServices)
	sorted := slices.Clone(services)
	sort.Strings(sorted)
	if !slices.Equal(tfServices, sorted) {
		t.Errorf("local.services %v, the Kubernetes Deployments %v", tfServices, sorted)
	}
	prodAccounts := loadManifests(t, filepath.Join(repoRoot(t), "deploy/k8s/overlays/production")).accounts
	for _, svc := range services {
		ctx := evalContext(t, blocks, svc)
		name := evalString(t, ctx, roles[0].attr("name"), "role name")
		arn := prodAccounts["sluice-"+svc].Annotations[irsaAnnotation]
		if !strings.HasSuffix(arn, ":role/"+name) {
			t.Errorf("service %s: Terraform role %s, its ServiceAccount is bound to %s", svc, name, arn)
		}
		var subjects []string
		for _, st := range trust[0].body.Blocks {
			for _, c := range st.Body.Blocks {
				if c.Type != "condition" {
					continue
				}
				if v := evalString(t, ctx, c.Body.Attributes["variable"].Expr, "trust variable"); strings.HasSuffix(v, ":sub") {
					vals, diags := c.Body.Attributes["values"].Expr.Value(ctx)
					if diags.HasErrors() {
						t.Fatal(diags.Error())
					}
					for it := vals.ElementIterator(); it.Next(); {
						_, s := it.Element()
						subjects = append(subjects, s.AsString())
					}
				}
			}
		}
		want := "system:serviceaccount:" + ctx.Variables["var"].GetAttr("namespace").AsString() + ":sluice-" + svc
		if !slices.Equal(subjects, []string{want}) {
			t.Errorf("role %s trusts %v, want only %s", name, subjects, want)
		}
	}
	t.Logf("roles and their actions: %v", roleActions)
}

// identity stands in for Terraform's toset: the test only iterates the elements.
var identity = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType}},
	Type:   func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
	Impl:   func(args []cty.Value, _ cty.Type) (cty.Value, error) { return args[0], nil },
})
