package txerr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want Type
	}{
		{errors.New("nonce too low: next nonce 5, tx nonce 3"), NonceTooLow},
		{errors.New("Nonce too high. Expected nonce to be 2 but got 9."), NonceTooHigh},
		{errors.New("replacement transaction underpriced"), ReplacementUnderpriced},
		{errors.New("transaction underpriced: tip needed 30000000000"), GasPriceTooLow},
		{errors.New("max fee per gas less than block base fee: address 0x.., maxFeePerGas: 1 baseFee: 7"), GasPriceTooLow},
		{errors.New("insufficient funds for gas * price + value"), InsufficientFunds},
		{errors.New("execution reverted: ERC20: transfer amount exceeds balance"), ExecutionReverted},
		{errors.New("intrinsic gas too low"), OutOfGas},
		{errors.New("gas required exceeds allowance (30000000)"), OutOfGas},
		{errors.New("invalid sender"), InvalidTransaction},
		{errors.New("rlp: expected input list"), InvalidTransaction},
		{errors.New("429 Too Many Requests"), Network},
		{errors.New("503 Service Unavailable"), Network},
		{fmt.Errorf("post: %w", io.ErrUnexpectedEOF), Network},
		{context.DeadlineExceeded, Timeout},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), Timeout},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, Network},
		{errors.New("something nobody has seen"), Unknown},
		{New(NonceTooHigh, "x", errors.New("execution reverted")), NonceTooHigh}, // explicit wins over text
		{fmt.Errorf("outer: %w", New(InsufficientFunds, "bal", nil)), InsufficientFunds},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Fatalf("Classify(%q) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

func TestRetryableMatchesArchitecture(t *testing.T) {
	permanent := []Type{InsufficientFunds, InvalidTransaction, ExecutionReverted, Unknown}
	retryable := []Type{Network, Timeout, NonceTooLow, NonceTooHigh, GasPriceTooLow, ReplacementUnderpriced, OutOfGas}
	for _, p := range permanent {
		if p.Retryable() {
			t.Errorf("%s must be permanent", p)
		}
	}
	for _, r := range retryable {
		if !r.Retryable() {
			t.Errorf("%s must be retryable", r)
		}
	}
	if Classify(nil) != "" || IsRetryable(nil) {
		t.Error("nil error classified")
	}
}

func TestCodeOf(t *testing.T) {
	if c := CodeOf(New(Network, "rpc_down", errors.New("x"))); c != "rpc_down" {
		t.Fatalf("code %q", c)
	}
	if c := CodeOf(errors.New("nonce too low")); c != "NONCE_TOO_LOW" {
		t.Fatalf("code %q", c)
	}
}
