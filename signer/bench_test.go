package signer_test

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/contracts/bindings"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/multicall"
	"github.com/sluice-custody/sluice/signer"
)

// fakeCaller answers eth_call with a fixed simulation output.
type fakeCaller struct{ out []byte }

func (f fakeCaller) CallContract(context.Context, ethereum.CallMsg, *big.Int) ([]byte, error) {
	return f.out, nil
}

func benchTransfers(n int) []multicall.Transfer {
	ts := make([]multicall.Transfer, n)
	for i := range ts {
		var a common.Address
		a[0], a[18], a[19] = 1, byte(i>>8), byte(i)
		ts[i] = multicall.Transfer{To: a, Amount: big.NewInt(int64(1_000_000 + i))}
	}
	return ts
}

func packOutputs(b *testing.B, method abi.Method, v any) []byte {
	out, err := method.Outputs.Pack(v)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// Building a 300-item native batch: simulation decoding, dropping failures, atomic re-encoding.
func BenchmarkBuildNativeBatch300(b *testing.B) {
	ts := benchTransfers(300)
	res := make([]bindings.Multicall3Result, len(ts))
	for i := range res {
		res[i] = bindings.Multicall3Result{Success: i != 7, ReturnData: []byte{}}
	}
	c := fakeCaller{packOutputs(b, bindings.NewMulticall3().GetABI().Methods["aggregate3Value"], res)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, failed, err := signer.BuildNative(ctx, c, common.Address{1}, common.Address{2}, ts); err != nil || len(failed) != 1 {
			b.Fatal(err, failed)
		}
	}
}

// Building a 400-item ERC-20 batch: simulation decoding and re-encoding without the failed item.
func BenchmarkBuildERC20Batch400(b *testing.B) {
	ts := benchTransfers(400)
	oks := make([]bool, len(ts))
	for i := range oks {
		oks[i] = i != 9
	}
	c := fakeCaller{packOutputs(b, bindings.NewBatchTransfer().GetABI().Methods["batchTransfer"], oks)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, failed, err := signer.BuildERC20(ctx, c, common.Address{1}, common.Address{2}, common.Address{3}, ts); err != nil || len(failed) != 1 {
			b.Fatal(err, failed)
		}
	}
}

func benchSign(b *testing.B, data []byte) {
	key, _ := crypto.GenerateKey()
	ks, err := keys.NewKeystore(b.TempDir(), "pw", keys.WithLightScrypt())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ks.ImportECDSA(key); err != nil {
		b.Fatal(err)
	}
	s, err := ks.Signer(context.Background(), crypto.PubkeyToAddress(key.PublicKey))
	if err != nil {
		b.Fatal(err)
	}
	chainID := big.NewInt(31337)
	to := common.Address{9}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: uint64(i), GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(2e9),
			Gas: 10_000_000, To: &to, Data: data})
		signed, err := s.SignTx(context.Background(), tx, chainID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := signed.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}

// Signing (keystore) and encoding one single transfer.
func BenchmarkSignSingle(b *testing.B) { benchSign(b, make([]byte, 68)) }

// Signing and encoding one 400-item ERC-20 batch transaction (hashing the calldata dominates).
func BenchmarkSignBatch400(b *testing.B) {
	data, err := multicall.ERC20Batch(common.Address{3}, benchTransfers(400))
	if err != nil {
		b.Fatal(err)
	}
	benchSign(b, data)
}
