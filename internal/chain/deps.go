package chain

import (
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
