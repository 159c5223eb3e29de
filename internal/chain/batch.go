package chain

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/sluice-custody/sluice/internal/txerr"
)

// BatchCall sends elems as JSON-RPC batches through the same endpoints, breakers, failover, metrics
// (method "batch": one request per batch sent) and error classification as the single calls.
//
// Each element ends with what the single call of its method would have given: its result, or in its
// Error the node's answer classified as Client.answer classifies it (a revert is txerr.ExecutionReverted).
// A whole batch the endpoint failed (transport, HTTP status, garbled response) fails over like a single
// call; so do the elements the endpoint failed one by one (a rate-limit answer, a missing response, a
// transient answer), alone, in the next attempt, while the elements already answered keep their
// answers. The returned error is the batch's own failure (every endpoint failed, or ctx ended), which
// every element it left unanswered also carries; nil when each element has its answer.
func (c *Client) BatchCall(ctx context.Context, elems []rpc.BatchElem) error {
	if len(elems) == 0 {
		return nil
	}
	pending := make([]int, len(elems))
	for i := range elems {
		pending[i] = i
		elems[i].Error = nil
	}
	err := c.doOn(ctx, "batch", func(ctx context.Context, ep *endpoint) error {
		sub := make([]rpc.BatchElem, len(pending))
		for i, k := range pending {
			sub[i] = elems[k]
		}
		if err := ep.rpc.BatchCallContext(ctx, sub); err != nil {
			return err
		}
		var (
			retry []int
			fault error
		)
		for i, k := range pending {
			e := sub[i].Error
			switch {
			case e == nil:
			case endpointFault(e) || txerr.IsTransient(e):
				// The single call would fail over on this answer: so does this element.
				retry = append(retry, k)
				if fault == nil {
					fault = e
				}
			default:
				if !errors.Is(e, ethereum.NotFound) {
					c.met.Error(c.name, ep.name, string(txerr.Classify(e)))
				}
				elems[k].Error = c.answer(elems[k].Method, ep.scrub(e))
			}
		}
		pending = retry
		if fault != nil {
			return fmt.Errorf("%d of %d answers in the batch: %w", len(retry), len(sub), fault)
		}
		return nil
	})
	if err != nil {
		for _, k := range pending {
			elems[k].Error = err
		}
	}
	return err
}
