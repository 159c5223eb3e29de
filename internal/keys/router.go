package keys

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/ethereum/go-ethereum/common"
)

// Router sends each wallet to the one provider configured for it (keystore, Secrets Manager or KMS).
// There is no fallback: an address with no route, or whose provider fails, gets an unavailable-key
// error, never a signer from another backend.
type Router struct {
	routes map[common.Address]Provider
	names  map[common.Address]string
}

var _ Provider = (*Router)(nil)

// Route is one wallet's provider and the backend name shown in errors and listings.
type Route struct {
	Backend  string
	Provider Provider
}

// NewRouter builds a router; every route needs a provider.
func NewRouter(routes map[common.Address]Route) (*Router, error) {
	r := &Router{routes: map[common.Address]Provider{}, names: map[common.Address]string{}}
	for a, rt := range routes {
		if rt.Provider == nil {
			return nil, fmt.Errorf("keys: route for %s has no provider", a.Hex())
		}
		r.routes[a], r.names[a] = rt.Provider, rt.Backend
	}
	return r, nil
}

// Signer returns addr's signer from its own provider.
func (r *Router) Signer(ctx context.Context, addr common.Address) (Signer, error) {
	p, ok := r.routes[addr]
	if !ok {
		return nil, Unavailable(addr, "router", ErrUnknownAddress)
	}
	return p.Signer(ctx, addr)
}

// Addresses lists the routed addresses, sorted.
func (r *Router) Addresses(context.Context) ([]common.Address, error) {
	out := make([]common.Address, 0, len(r.routes))
	for a := range r.routes {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b common.Address) int { return a.Cmp(b) })
	return out, nil
}

// Backend names addr's backend ("" when not routed).
func (r *Router) Backend(addr common.Address) string { return r.names[addr] }

// Close closes every distinct provider that can be closed.
func (r *Router) Close() error {
	var errs []error
	seen := map[Provider]bool{}
	for _, p := range r.routes {
		if seen[p] {
			continue
		}
		seen[p] = true
		if c, ok := p.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

func (r *Router) String() string { return fmt.Sprintf("keys.Router{wallets: %d}", len(r.routes)) }

// GoString and Format keep %#v and %+v from walking into the providers.
func (r *Router) GoString() string           { return r.String() }
func (r *Router) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(r.String())) }
func (r *Router) LogValue() slog.Value       { return slog.IntValue(len(r.routes)) }
