package multicall_test

import (
	"bytes"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/contracts/bindings"
	"github.com/sluice-custody/sluice/multicall"
)

var (
	mc3   = bindings.NewMulticall3()
	batch = bindings.NewBatchTransfer()
)

func addr(i int) common.Address { return common.BigToAddress(big.NewInt(int64(0x1000 + i))) }

func transfers(n int) []multicall.Transfer {
	out := make([]multicall.Transfer, n)
	for i := range out {
		out[i] = multicall.Transfer{To: addr(i), Amount: big.NewInt(int64(i + 1))}
	}
	return out
}

// decodeAggregate3Value unpacks NativeBatch calldata back into its calls.
func decodeAggregate3Value(t *testing.T, data []byte) []bindings.Multicall3Call3Value {
	t.Helper()
	m := mc3.GetABI().Methods["aggregate3Value"]
	if !bytes.Equal(data[:4], m.ID) {
		t.Fatalf("selector %x, want aggregate3Value %x", data[:4], m.ID)
	}
	args, err := m.Inputs.Unpack(data[4:])
	if err != nil {
		t.Fatal(err)
	}
	var calls []bindings.Multicall3Call3Value
	if err := m.Inputs.Copy(&calls, args); err != nil {
		t.Fatal(err)
	}
	return calls
}

func TestNativeBatchEncoding(t *testing.T) {
	for _, tc := range []struct {
		name         string
		encode       func([]multicall.Transfer) ([]byte, *big.Int, error)
		allowFailure bool
	}{
		{"NativeBatch", multicall.NativeBatch, true},
		{"NativeBatchAtomic", multicall.NativeBatchAtomic, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := transfers(3)
			data, total, err := tc.encode(in)
			if err != nil {
				t.Fatal(err)
			}
			if total.Int64() != 1+2+3 {
				t.Fatalf("total %v, want 6", total)
			}
			calls := decodeAggregate3Value(t, data)
			if len(calls) != len(in) {
				t.Fatalf("%d calls, want %d", len(calls), len(in))
			}
			for i, c := range calls {
				if c.Target != in[i].To || c.Value.Cmp(in[i].Amount) != 0 || c.AllowFailure != tc.allowFailure || len(c.CallData) != 0 {
					t.Errorf("call %d = %+v; want target %s value %v allowFailure %v, no calldata", i, c, in[i].To, in[i].Amount, tc.allowFailure)
				}
			}
		})
	}
}

func TestEncodingRejectsBadTransfers(t *testing.T) {
	huge := new(big.Int).Lsh(big.NewInt(1), 256)
	half := new(big.Int).Lsh(big.NewInt(1), 255)
	cases := []struct {
		name      string
		transfers []multicall.Transfer
		want      string
		nativeOK  bool // only the native sum can overflow
	}{
		{"empty", nil, "empty batch", false},
		{"zero address", []multicall.Transfer{{To: common.Address{}, Amount: big.NewInt(1)}}, "zero recipient", false},
		{"nil amount", []multicall.Transfer{{To: addr(1)}}, "not positive", false},
		{"zero amount", []multicall.Transfer{{To: addr(1), Amount: new(big.Int)}}, "not positive", false},
		{"negative amount", []multicall.Transfer{{To: addr(1), Amount: big.NewInt(-5)}}, "not positive", false},
		{"amount over uint256", []multicall.Transfer{{To: addr(1), Amount: huge}}, "exceeds uint256", false},
		{"total over uint256", []multicall.Transfer{{To: addr(1), Amount: half}, {To: addr(2), Amount: half}}, "total value", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := multicall.NativeBatch(tc.transfers); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NativeBatch: err %v, want one containing %q", err, tc.want)
			}
			_, err := multicall.ERC20Batch(addr(99), tc.transfers)
			if tc.nativeOK {
				if err != nil {
					t.Errorf("ERC20Batch: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ERC20Batch: err %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, _, err := multicall.NativeBatch(nil); !errors.Is(err, multicall.ErrEmptyBatch) {
		t.Errorf("NativeBatch(nil) = %v, want ErrEmptyBatch", err)
	}
	if _, err := multicall.ERC20Batch(common.Address{}, transfers(1)); err == nil {
		t.Error("ERC20Batch accepted the zero token address")
	}
}

func TestERC20BatchEncoding(t *testing.T) {
	token := addr(500)
	in := transfers(4)
	data, err := multicall.ERC20Batch(token, in)
	if err != nil {
		t.Fatal(err)
	}
	m := batch.GetABI().Methods["batchTransfer"]
	if !bytes.Equal(data[:4], m.ID) {
		t.Fatalf("selector %x, want %x", data[:4], m.ID)
	}
	args, err := m.Inputs.Unpack(data[4:])
	if err != nil {
		t.Fatal(err)
	}
	gotToken, to, amounts := args[0].(common.Address), args[1].([]common.Address), args[2].([]*big.Int)
	if gotToken != token || len(to) != len(in) || len(amounts) != len(in) {
		t.Fatalf("decoded %s, %d recipients, %d amounts", gotToken, len(to), len(amounts))
	}
	for i := range in {
		if to[i] != in[i].To || amounts[i].Cmp(in[i].Amount) != 0 {
			t.Errorf("item %d: %s %v, want %s %v", i, to[i], amounts[i], in[i].To, in[i].Amount)
		}
	}
}

func TestDecodeResults(t *testing.T) {
	want := []bindings.Multicall3Result{{Success: true, ReturnData: []byte{}}, {Success: false, ReturnData: []byte{0xde, 0xad}}}
	out, err := mc3.GetABI().Methods["aggregate3Value"].Outputs.Pack(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := multicall.DecodeResults(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Success || got[1].Success || !bytes.Equal(got[1].ReturnData, []byte{0xde, 0xad}) {
		t.Fatalf("DecodeResults = %+v", got)
	}
	if _, err := multicall.DecodeResults([]byte{1, 2, 3}); err == nil {
		t.Fatal("DecodeResults accepted garbage")
	}
	lost, err := multicall.FailedValue(transfers(2), got)
	if err != nil || lost.Int64() != 2 {
		t.Fatalf("FailedValue = %v, %v; want 2", lost, err)
	}
	if _, err := multicall.FailedValue(transfers(3), got); err == nil {
		t.Fatal("FailedValue accepted mismatched lengths")
	}
}

// transferResultLog builds the log BatchTransfer emits for one item.
func transferResultLog(emitter, token, from, to common.Address, index, amount int64, ok bool) *types.Log {
	ev := batch.GetABI().Events["TransferResult"]
	data, err := ev.Inputs.NonIndexed().Pack(big.NewInt(index), big.NewInt(amount), ok)
	if err != nil {
		panic(err)
	}
	return &types.Log{
		Address: emitter,
		Topics:  []common.Hash{ev.ID, common.BytesToHash(token.Bytes()), common.BytesToHash(from.Bytes()), common.BytesToHash(to.Bytes())},
		Data:    data,
	}
}

func TestParseTransferResults(t *testing.T) {
	bt, token, from := addr(700), addr(701), addr(702)
	transferTopic := crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))
	tokenLog := &types.Log{Address: token, Topics: []common.Hash{transferTopic, {}, {}}, Data: make([]byte, 32)}
	good := []*types.Log{
		tokenLog,
		transferResultLog(bt, token, from, addr(1), 1, 20, false),
		tokenLog,
		transferResultLog(bt, token, from, addr(0), 0, 10, true),
		// A look-alike event from another contract (the token, say) is ignored.
		transferResultLog(token, token, from, addr(5), 0, 999, true),
	}
	got, err := multicall.ParseTransferResults(bt, good)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Index != 0 || !got[0].Success || got[0].To != addr(0) || got[0].Amount.Int64() != 10 ||
		got[1].Index != 1 || got[1].Success || got[1].To != addr(1) || got[1].From != from || got[1].Token != token {
		t.Fatalf("ParseTransferResults = %+v", got)
	}

	for name, logs := range map[string][]*types.Log{
		"duplicate index": {transferResultLog(bt, token, from, addr(0), 0, 1, true), transferResultLog(bt, token, from, addr(0), 0, 1, true)},
		"missing index":   {transferResultLog(bt, token, from, addr(0), 0, 1, true), transferResultLog(bt, token, from, addr(2), 2, 1, true)},
		"truncated data":  {{Address: bt, Topics: good[1].Topics, Data: good[1].Data[:40]}},
	} {
		if _, err := multicall.ParseTransferResults(bt, logs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func BenchmarkNativeBatchEncode(b *testing.B) {
	in := transfers(100)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := multicall.NativeBatch(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkERC20BatchEncode(b *testing.B) {
	in := transfers(100)
	token := addr(500)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := multicall.ERC20Batch(token, in); err != nil {
			b.Fatal(err)
		}
	}
}
