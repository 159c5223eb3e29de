package broadcaster

import (
	"context"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
)

type nullChain struct{}

func (nullChain) SendTransaction(context.Context, *types.Transaction) error { return nil }
func (nullChain) TransactionByHash(context.Context, common.Hash) (*types.Transaction, bool, error) {
	return nil, false, nil
}

// fakeSender stands in for the queue where only its presence matters.
type fakeSender struct{ queue.TxSender }

// New refuses to build a broadcaster without a collaborator, naming it, instead of panicking later.
func TestNewNamesMissingDependency(t *testing.T) {
	full := Deps{Store: &store.Store{}, Queue: fakeSender{}, Chains: map[string]Chain{"local": nullChain{}}}
	for want, drop := range map[string]func(*Deps){
		"Store":   func(d *Deps) { d.Store = nil },
		"Queue":   func(d *Deps) { d.Queue = nil },
		"Chains":  func(d *Deps) { d.Chains = nil },
		`"local"`: func(d *Deps) { d.Chains = map[string]Chain{"local": nil} },
	} {
		d := full
		drop(&d)
		if _, err := New(d, nil, NopMetrics()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without %s: %v, want an error naming it", want, err)
		}
	}
	if _, err := New(full, nil, nil); err == nil || !strings.Contains(err.Error(), "Metrics") {
		t.Errorf("without Metrics: %v", err)
	}
	if _, err := New(full, nil, NopMetrics()); err != nil {
		t.Errorf("complete deps and a nil log: %v", err)
	}
}
