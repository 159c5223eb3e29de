package signer

import (
	"math/big"
	"testing"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/txerr"
)

func TestPickFees(t *testing.T) {
	cfg := config.Fees{MaxFeePerGas: config.NewWei(big.NewInt(100)), MaxPriorityFee: config.NewWei(big.NewInt(10)), MinPriorityFee: config.NewWei(big.NewInt(2)), BaseFeeMultiplier: 2}
	tests := []struct {
		name             string
		base, tip        int64
		wantFee, wantTip int64
		wantErr          txerr.Type
	}{
		{"normal", 20, 5, 45, 5, ""},
		{"tip raised to minimum", 20, 0, 42, 2, ""},
		{"tip capped", 20, 50, 50, 10, ""},
		{"fee capped", 60, 5, 100, 5, ""},
		{"base fee at cap minus min tip", 98, 5, 100, 5, ""},
		{"base fee above cap waits", 99, 5, 0, 0, txerr.GasPriceTooLow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PickFees(cfg, big.NewInt(tt.base), big.NewInt(tt.tip))
			if tt.wantErr != "" {
				if txerr.Classify(err) != tt.wantErr || !txerr.IsRetryable(err) {
					t.Fatalf("err %v, want retryable %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.MaxFeePerGas.Int64() != tt.wantFee || got.MaxPriorityFee.Int64() != tt.wantTip {
				t.Fatalf("fees %v/%v, want %d/%d", got.MaxFeePerGas, got.MaxPriorityFee, tt.wantFee, tt.wantTip)
			}
			if got.MaxPriorityFee.Cmp(got.MaxFeePerGas) > 0 {
				t.Fatal("tip above fee cap")
			}
		})
	}
}
