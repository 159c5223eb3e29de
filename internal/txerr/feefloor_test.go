package txerr_test

import (
	"errors"
	"testing"

	"github.com/sluice-custody/sluice/internal/txerr"
)

// A node's fee floor is a retryable GAS_PRICE_TOO_LOW that names the tip it needs, in bor's and geth's
// words; geth's intrinsic-gas refusal, which also says "minimum needed", is not a fee problem.
func TestFeeFloorRefusals(t *testing.T) {
	for _, msg := range []string{
		"gas tip cap 1000000000, minimum needed 25000000000",                                                                    // bor (Polygon)
		"transaction gas price below minimum: gas tip cap 1000000000, minimum needed 25000000000",                               // geth txpool
		"local eth_sendRawTransaction: transaction gas price below minimum: gas tip cap 1000000000, minimum needed 25000000000", // via chain.Client
	} {
		err := errors.New(msg)
		if got := txerr.Classify(err); got != txerr.GasPriceTooLow || !txerr.IsRetryable(err) {
			t.Errorf("%q: %s, want retryable GAS_PRICE_TOO_LOW", msg, got)
		}
		if tip, ok := txerr.MinTipNeeded(err); !ok || tip.String() != "25000000000" {
			t.Errorf("%q: min tip %v %v", msg, tip, ok)
		}
	}
	intrinsic := errors.New("intrinsic gas too low: gas 20000, minimum needed 21000")
	if got := txerr.Classify(intrinsic); got != txerr.OutOfGas {
		t.Errorf("intrinsic gas: %s, want OUT_OF_GAS", got)
	}
}
