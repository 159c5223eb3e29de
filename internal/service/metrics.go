package service

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register adds c to reg, or returns the collector already registered there under the same name: several
// services (and tests) in one process share the default registry.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
