package signer_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-custody/sluice/internal/pipelinetest"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/signer"
)

// The signer counts what it signs and fails on the registry it is given.
func TestSignerMetrics(t *testing.T) {
	e := pipelinetest.New(t, pipelinetest.Options{})
	reg := prometheus.NewRegistry()
	s, err := signer.New(e.SignerDeps(), e.Log, signer.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	e.Withdraw("POL", testenv.NewAccount(t).Address, 1e15)
	e.Withdraw("DAI", testenv.NewAccount(t).Address, 1) // not configured: FAILED at once
	for _, m := range e.Receive(queue.TxRequest) {
		if err := s.Handle(e.Ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]float64{
		`sluice_signer_withdrawals_signed_total{asset="POL",chain="local"}`:                            1,
		`sluice_signer_withdrawals_failed_total{asset="DAI",chain="local",type="INVALID_TRANSACTION"}`: 1,
		`sluice_signer_transactions_signed_total{chain="local",kind="withdrawal"}`:                     1,
		`sluice_signer_sign_seconds_count{chain="local"}`:                                              1,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if mf.GetType().String() == "HISTOGRAM" {
				key += "_count"
			}
			labels := ""
			for i, l := range m.GetLabel() {
				if i > 0 {
					labels += ","
				}
				labels += l.GetName() + `="` + l.GetValue() + `"`
			}
			v := m.GetCounter().GetValue()
			if m.GetHistogram() != nil {
				v = float64(m.GetHistogram().GetSampleCount())
			}
			got[key+"{"+labels+"}"] = v
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d series, want %d: %v", len(got), len(want), got)
	}
}
