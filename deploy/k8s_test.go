package deploy_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/sqsq"
)

// k8sServices are the services deployed one Deployment each.
var k8sServices = []string{"api", "signer", "broadcaster", "monitor", "recovery", "accountmgr"}

// consumes is the queue each KEDA-scaled service consumes.
var consumes = map[string]string{"signer": queue.TxRequest, "broadcaster": queue.SignedTx, "monitor": queue.TxMonitor}

// KEDA's types are not vendored: the fields these manifests may use, decoded as strictly as the rest.
type scaledObject struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
		PollingInterval *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod  *int32 `json:"cooldownPeriod,omitempty"`
		Triggers        []struct {
			Type              string            `json:"type"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
			} `json:"authenticationRef,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}

type triggerAuthentication struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		PodIdentity struct {
			Provider      string `json:"provider"`
			IdentityOwner string `json:"identityOwner,omitempty"`
		} `json:"podIdentity"`
	} `json:"spec"`
}

type kustomization struct {
	metav1.TypeMeta `json:",inline"`
	Namespace       string   `json:"namespace,omitempty"`
	Resources       []string `json:"resources,omitempty"`
	Images          []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
	Patches []struct {
		Path string `json:"path"`
	} `json:"patches,omitempty"`
	Labels []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels,omitempty"`
}

// sqsTriggerKeys are the metadata KEDA's aws-sqs-queue scaler reads.
var sqsTriggerKeys = []string{"queueURL", "queueURLFromEnv", "queueLength", "activationQueueLength", "awsRegion", "awsEndpoint", "identityOwner", "scaleOnInFlight", "scaleOnDelayed"}

// manifests is one kustomization directory, every document decoded strictly into its type.
type manifests struct {
	kust          kustomization
	deployments   map[string]*appsv1.Deployment
	accounts      map[string]*corev1.ServiceAccount
	pdbs          map[string]*policyv1.PodDisruptionBudget
	hpas          map[string]*autoscalingv2.HorizontalPodAutoscaler
	services      map[string]*corev1.Service
	configMaps    map[string]*corev1.ConfigMap
	policies      map[string]*networkingv1.NetworkPolicy
	scaled        map[string]*scaledObject
	auths         map[string]*triggerAuthentication
	namespaces    map[string]*corev1.Namespace
	files, loaded []string
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// loadManifests decodes dir's kustomization.yaml and every file it lists (resources and patches; a
// directory resource is not followed), rejecting unknown fields and unknown kinds.
func loadManifests(t *testing.T, dir string) *manifests {
	t.Helper()
	m := &manifests{deployments: map[string]*appsv1.Deployment{}, accounts: map[string]*corev1.ServiceAccount{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{},
		policies: map[string]*networkingv1.NetworkPolicy{}, scaled: map[string]*scaledObject{},
		auths: map[string]*triggerAuthentication{}, namespaces: map[string]*corev1.Namespace{}}
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &m.kust); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	if m.kust.Kind != "Kustomization" || m.kust.APIVersion != "kustomize.config.k8s.io/v1beta1" {
		t.Errorf("%s/kustomization.yaml: %s %s", dir, m.kust.APIVersion, m.kust.Kind)
	}
	files := slices.Clone(m.kust.Resources)
	for _, p := range m.kust.Patches {
		files = append(files, p.Path)
	}
	for _, f := range files {
		path := filepath.Join(dir, f)
		if st, err := os.Stat(path); err != nil {
			t.Errorf("%s lists %s: %v", dir, f, err)
			continue
		} else if st.IsDir() {
			continue
		}
		m.files = append(m.files, f)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSep.Split(string(b), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			if err := m.decode([]byte(doc)); err != nil {
				t.Errorf("%s document %d: %v", path, i+1, err)
			}
		}
	}
	// Every manifest in the directory is used: none is left behind by a rename.
	all, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, p := range all {
		if f := filepath.Base(p); f != "kustomization.yaml" && !slices.Contains(m.files, f) {
			t.Errorf("%s is not listed in %s/kustomization.yaml", f, dir)
		}
	}
	return m
}

func (m *manifests) decode(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	strict := func(v any) error { return yaml.UnmarshalStrict(doc, v) }
	var name string
	var err error
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		err, name = strict(o), o.Name
		m.deployments[name] = o
	case "v1 ServiceAccount":
		o := &corev1.ServiceAccount{}
		err, name = strict(o), o.Name
		m.accounts[name] = o
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		err, name = strict(o), o.Name
		m.pdbs[name] = o
	case "autoscaling/v2 HorizontalPodAutoscaler":
		o := &autoscalingv2.HorizontalPodAutoscaler{}
		err, name = strict(o), o.Name
		m.hpas[name] = o
	case "v1 Service":
		o := &corev1.Service{}
		err, name = strict(o), o.Name
		m.services[name] = o
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		err, name = strict(o), o.Name
		m.configMaps[name] = o
	case "v1 Namespace":
		o := &corev1.Namespace{}
		err, name = strict(o), o.Name
		m.namespaces[name] = o
	case "networking.k8s.io/v1 NetworkPolicy":
		o := &networkingv1.NetworkPolicy{}
		err, name = strict(o), o.Name
		m.policies[name] = o
	case "keda.sh/v1alpha1 ScaledObject":
		o := &scaledObject{}
		err, name = strict(o), o.Metadata.Name
		m.scaled[name] = o
	case "keda.sh/v1alpha1 TriggerAuthentication":
		o := &triggerAuthentication{}
		err, name = strict(o), o.Metadata.Name
		m.auths[name] = o
	default:
		return fmt.Errorf("unexpected kind %q %q", tm.APIVersion, tm.Kind)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", tm.Kind, name, err)
	}
	if name == "" {
		return fmt.Errorf("%s without a name", tm.Kind)
	}
	m.loaded = append(m.loaded, tm.Kind+"/"+name)
	return nil
}

// loadConfigMap loads the sluice-config ConfigMap's config.yaml with config.Load, as the pods do.
func loadConfigMap(t *testing.T, m *manifests) *config.Config {
	t.Helper()
	cm := m.configMaps["sluice-config"]
	if cm == nil || cm.Data["config.yaml"] == "" {
		t.Fatal("no sluice-config ConfigMap with a config.yaml")
	}
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SLUICE_") {
			t.Setenv(k, "") // the pods' own environment does not leak in from the test's
		}
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatalf("the ConfigMap's config.yaml does not load: %v", err)
	}
	return cfg
}

func port(t *testing.T, listen string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("listen %q: %v", listen, err)
	}
	return p
}

// TestKubernetesBase decodes the base strictly and checks what the services need of it.
func TestKubernetesBase(t *testing.T) {
	m := loadManifests(t, filepath.Join(repoRoot(t), "deploy/k8s/base"))
	cfg := loadConfigMap(t, m)
	defaults, err := config.Load("") // the default ports of each service
	if err != nil {
		t.Fatal(err)
	}
	// A pod stops within its grace period: the consumer's drain, plus a receive long poll in progress.
	minGrace := int64((queue.DefaultShutdownGrace + cfg.Queue.WaitTime.Duration).Seconds())
	for _, svc := range k8sServices {
		name := "sluice-" + svc
		d := m.deployments[name]
		if d == nil {
			t.Errorf("no Deployment %s", name)
			continue
		}
		pod := d.Spec.Template.Spec
		if !selects(d.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("%s: its selector does not select its own pods", name)
		}
		if pod.ServiceAccountName != name || m.accounts[name] == nil {
			t.Errorf("%s: ServiceAccount %q (want %s, declared)", name, pod.ServiceAccountName, name)
		}
		if g := pod.TerminationGracePeriodSeconds; g == nil || *g <= minGrace {
			t.Errorf("%s: terminationGracePeriodSeconds %v, want more than %d (consumer drain %s + queue wait %s)",
				name, g, minGrace, queue.DefaultShutdownGrace, cfg.Queue.WaitTime.Duration)
		}
		if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: does not require a non-root user", name)
		}
		if len(pod.Containers) != 1 {
			t.Fatalf("%s: %d containers", name, len(pod.Containers))
		}
		c := pod.Containers[0]
		if len(c.Args) == 0 || c.Args[0] != svc {
			t.Errorf("%s: args %v, want %s first (sluice %s)", name, c.Args, svc, svc)
		}
		listen := cfg.API.Listen
		if svc != "api" {
			listen = cfg.Services[svc].Listen
			if p := port(t, defaults.Services[svc].Listen); p != port(t, listen) {
				t.Errorf("%s: ConfigMap listens on %s, the service's default port is %s", name, listen, p)
			}
		}
		if h, _, _ := net.SplitHostPort(listen); h != "0.0.0.0" && h != "" {
			t.Errorf("%s: listens on %s: probes from the kubelet cannot reach it", name, listen)
		}
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		for _, pr := range []struct {
			what, path string
			probe      *corev1.Probe
		}{{"readiness", "/readyz", c.ReadinessProbe}, {"liveness", "/healthz", c.LivenessProbe}} {
			if pr.probe == nil || pr.probe.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", name, pr.what)
				continue
			}
			if pr.probe.HTTPGet.Path != pr.path {
				t.Errorf("%s: %s probe on %s, want %s", name, pr.what, pr.probe.HTTPGet.Path, pr.path)
			}
			if got := probePort(pr.probe.HTTPGet.Port, ports); fmt.Sprint(got) != port(t, listen) {
				t.Errorf("%s: %s probe on port %d, the process listens on %s", name, pr.what, got, listen)
			}
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
				t.Errorf("%s: no %s request", name, r)
			}
		}
		if pdb := m.pdbs[name]; pdb == nil || !selects(pdb.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("%s: no PodDisruptionBudget selecting its pods", name)
		}
	}
	if h := m.hpas["sluice-api"]; h == nil || h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != "sluice-api" {
		t.Error("no HorizontalPodAutoscaler scaling Deployment sluice-api")
	}
	checkScaledObjects(t, m, cfg.Queue.SQS.Prefix)
	checkSecretsEgress(t, m)
	for _, a := range m.accounts {
		if _, ok := a.Annotations[irsaAnnotation]; ok {
			t.Errorf("ServiceAccount %s: the base binds no IAM role (the overlay does, per account)", a.Name)
		}
	}
	t.Logf("base: %d objects decoded strictly: %s", len(m.loaded), strings.Join(m.loaded, ", "))
}

func probePort(p intstr.IntOrString, named map[string]int32) int32 {
	if p.Type == intstr.String {
		return named[p.StrVal]
	}
	return p.IntVal
}

func selects(sel *metav1.LabelSelector, labels map[string]string) bool {
	if sel == nil || len(sel.MatchLabels) == 0 {
		return false
	}
	for k, v := range sel.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkScaledObjects: the signer, broadcaster and monitor are scaled by KEDA on the SQS queue they
// consume, named as the code names it (prefix, logical name, .fifo for FIFO queues).
func checkScaledObjects(t *testing.T, m *manifests, prefix string) {
	t.Helper()
	for svc, q := range consumes {
		so := m.scaled["sluice-"+svc]
		if so == nil {
			t.Errorf("no ScaledObject sluice-%s", svc)
			continue
		}
		if so.Spec.ScaleTargetRef.Name != "" && so.Spec.ScaleTargetRef.Name != "sluice-"+svc {
			t.Errorf("ScaledObject sluice-%s scales %s", svc, so.Spec.ScaleTargetRef.Name)
		}
		phys := prefix + q
		if sqsq.DefaultFIFO(q) {
			phys += ".fifo"
		}
		if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "aws-sqs-queue" {
			t.Errorf("ScaledObject sluice-%s: want one aws-sqs-queue trigger", svc)
			continue
		}
		tr := so.Spec.Triggers[0]
		if u := tr.Metadata["queueURL"]; !strings.HasSuffix(u, "/"+phys) {
			t.Errorf("ScaledObject sluice-%s: queueURL %q, want the queue %s", svc, u, phys)
		}
		for k := range tr.Metadata {
			if !slices.Contains(sqsTriggerKeys, k) {
				t.Errorf("ScaledObject sluice-%s: unknown aws-sqs-queue metadata %q", svc, k)
			}
		}
		if tr.AuthenticationRef != nil && m.auths[tr.AuthenticationRef.Name] == nil && len(m.auths) > 0 {
			t.Errorf("ScaledObject sluice-%s: TriggerAuthentication %s not declared", svc, tr.AuthenticationRef.Name)
		}
	}
}

// checkSecretsEgress: the subnet of the Secrets Manager and KMS endpoints is excepted from the egress of
// every Sluice pod but the signer's.
func checkSecretsEgress(t *testing.T, m *manifests) string {
	t.Helper()
	p := m.policies["sluice-egress"]
	if p == nil {
		t.Error("no NetworkPolicy sluice-egress")
		return ""
	}
	sel := p.Spec.PodSelector
	if len(sel.MatchExpressions) != 1 || sel.MatchExpressions[0].Key != "app.kubernetes.io/component" ||
		sel.MatchExpressions[0].Operator != metav1.LabelSelectorOpNotIn || !slices.Equal(sel.MatchExpressions[0].Values, []string{"signer"}) {
		t.Errorf("sluice-egress must select every Sluice pod but the signer's: %+v", sel)
	}
	cidr := ""
	for _, rule := range p.Spec.Egress {
		for _, peer := range rule.To {
			if peer.IPBlock != nil {
				if len(peer.IPBlock.Except) != 1 {
					t.Errorf("sluice-egress: ipBlock %s excepts %v, want the secrets endpoints' subnet", peer.IPBlock.CIDR, peer.IPBlock.Except)
					continue
				}
				cidr = peer.IPBlock.Except[0]
				if _, _, err := net.ParseCIDR(cidr); err != nil {
					t.Errorf("sluice-egress: %v", err)
				}
			}
		}
	}
	if cidr == "" {
		t.Error("sluice-egress excepts no subnet")
	}
	return cidr
}

const irsaAnnotation = "eks.amazonaws.com/role-arn"

// TestKubernetesProduction decodes the production overlay strictly: its configuration loads, its KEDA
// triggers name the production queues, and only the signer's ServiceAccount is bound to the signer's
// IAM role (the one role with access to the wallet secrets and the KMS keys, deploy/terraform).
func TestKubernetesProduction(t *testing.T) {
	root := repoRoot(t)
	m := loadManifests(t, filepath.Join(root, "deploy/k8s/overlays/production"))
	if !slices.Contains(m.kust.Resources, "../../base") || m.kust.Namespace == "" {
		t.Errorf("the overlay must build on ../../base into its own namespace: %+v", m.kust)
	}
	cfg := loadConfigMap(t, m)
	if cfg.Queue.Backend != "sqs" || cfg.Queue.SQS.Prefix == "" {
		t.Errorf("production queue %+v: want SQS with a prefix", cfg.Queue)
	}
	checkScaledObjects(t, m, cfg.Queue.SQS.Prefix)
	checkSecretsEgress(t, m)
	rolePrefix := strings.TrimSuffix(cfg.Queue.SQS.Prefix, "-")
	arnRE := regexp.MustCompile(`^arn:aws:iam::\d{12}:role/(.+)$`)
	for _, svc := range k8sServices {
		a := m.accounts["sluice-"+svc]
		if a == nil {
			t.Errorf("no ServiceAccount patch for sluice-%s", svc)
			continue
		}
		mm := arnRE.FindStringSubmatch(a.Annotations[irsaAnnotation])
		if mm == nil {
			t.Errorf("sluice-%s: %s %q is not an IAM role ARN", svc, irsaAnnotation, a.Annotations[irsaAnnotation])
			continue
		}
		if want := rolePrefix + "-" + svc; mm[1] != want {
			t.Errorf("sluice-%s is bound to role %s, want its own role %s", svc, mm[1], want)
		}
	}
	t.Logf("production: %d objects decoded strictly", len(m.loaded))
}
