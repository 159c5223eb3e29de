package chain

import (
	"fmt"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/fees"
)

// Deps is one configured chain as a service uses it: its configuration, its node client seen through
// the small interface C the service declares (so tests can hand in a fake), and its fee estimator. Every
// service's per-chain dependencies are this one type (signer.ChainDeps = Deps[signer.Chain], …).
type Deps[C any] struct {
	Config config.Chain
	Client C
	Fees   *fees.Estimator // nil for services that pay no fees
}

// WithFees returns d with its fee estimator built on d.Client from d.Config's fees, unless it has one.
func WithFees[C fees.Node](d Deps[C]) (Deps[C], error) {
	if d.Fees != nil {
		return d, nil
	}
	est, err := fees.New(d.Config.Name, d.Config.Fees, d.Client)
	if err != nil {
		return d, err
	}
	d.Fees = est
	return d, nil
}

// AllWithFees checks that every chain of ds has a node client and returns a copy of ds with each fee
// estimator built (WithFees): what a service's constructor does with the chains it is given.
func AllWithFees[C fees.Node](ds map[string]Deps[C]) (map[string]Deps[C], error) {
	out := make(map[string]Deps[C], len(ds))
	for name, d := range ds {
		if any(d.Client) == nil {
			return nil, fmt.Errorf("chain %s has no node client", name)
		}
		d, err := WithFees(d)
		if err != nil {
			return nil, err
		}
		out[name] = d
	}
	return out, nil
}
