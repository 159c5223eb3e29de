package contracts_test

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/contracts/bindings"
	"github.com/sluice-custody/sluice/internal/testenv"
	"github.com/sluice-custody/sluice/multicall"
)

var batch = bindings.NewBatchTransfer()

func usdt(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1_000_000)) }

func newRecipients(t *testing.T, n int) []common.Address {
	out := make([]common.Address, n)
	for i := range out {
		out[i] = testenv.NewAccount(t).Address
	}
	return out
}

// BatchTransfer pays each item from msg.sender on its own: a failing item (blocked recipient, allowance
// run out) is reported as failed in its event, moves nothing, and leaves the other items paid.
func TestBatchTransfer(t *testing.T) {
	e := setup(t)
	sender := e.deployer // owns the token, so it can mint and block too
	cases := []struct {
		name    string
		n       int
		blocked []int // recipients the token blocks
		short   int64 // approve this much (whole USDT) less than the batch total
		wantOK  []bool
	}{
		{name: "pays every recipient", n: 5, wantOK: []bool{true, true, true, true, true}},
		{name: "blocked recipient fails only its own item", n: 4, blocked: []int{1}, wantOK: []bool{true, false, true, true}},
		{name: "two blocked recipients", n: 5, blocked: []int{0, 4}, wantOK: []bool{false, true, true, true, false}},
		// amounts are 1,2,3 USDT: an allowance of 4 covers items 0 and 1 (3), not item 2 (needs 3 more)
		{name: "allowance runs out", n: 3, short: 2, wantOK: []bool{true, true, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			to := newRecipients(t, tc.n)
			transfers := make([]multicall.Transfer, tc.n)
			total := new(big.Int)
			for i := range to {
				transfers[i] = multicall.Transfer{To: to[i], Amount: usdt(int64(i + 1))}
				total.Add(total, transfers[i].Amount)
			}
			for _, i := range tc.blocked {
				e.send(t, sender, e.addrs.USDT, token.PackSetBlocked(to[i], true))
			}
			if err := contracts.Mint(e.ctx, e.cl, sender.Key, e.chainID, e.addrs.USDT, sender.Address, total); err != nil {
				t.Fatal(err)
			}
			allowance := new(big.Int).Sub(total, usdt(tc.short))
			e.send(t, sender, e.addrs.USDT, token.PackApprove(e.addrs.BatchTransfer, allowance))
			before := e.balanceOf(t, e.addrs.USDT, sender.Address)

			data, err := multicall.ERC20Batch(e.addrs.USDT, transfers)
			if err != nil {
				t.Fatal(err)
			}
			// What eth_call says the batch will do, before sending it.
			sim, err := batch.UnpackBatchTransfer(e.callFrom(t, sender.Address, e.addrs.BatchTransfer, data))
			if err != nil {
				t.Fatal(err)
			}
			logs := e.send(t, sender, e.addrs.BatchTransfer, data)
			res, err := multicall.ParseTransferResults(e.addrs.BatchTransfer, logs)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != tc.n {
				t.Fatalf("%d TransferResult events, want %d", len(res), tc.n)
			}
			paid := new(big.Int)
			for i, r := range res {
				if r.Success != tc.wantOK[i] || sim[i] != tc.wantOK[i] {
					t.Errorf("item %d: event success=%v, eth_call ok=%v, want %v", i, r.Success, sim[i], tc.wantOK[i])
				}
				if r.Index != i || r.To != to[i] || r.From != sender.Address || r.Token != e.addrs.USDT || r.Amount.Cmp(transfers[i].Amount) != 0 {
					t.Errorf("item %d: event %+v does not match the transfer %+v", i, r, transfers[i])
				}
				want := new(big.Int)
				if tc.wantOK[i] {
					want.Set(transfers[i].Amount)
					paid.Add(paid, want)
				}
				if got := e.balanceOf(t, e.addrs.USDT, to[i]); got.Cmp(want) != 0 {
					t.Errorf("recipient %d holds %v, want %v", i, got, want)
				}
			}
			// The sender keeps exactly what was not paid.
			if after := e.balanceOf(t, e.addrs.USDT, sender.Address); new(big.Int).Sub(before, after).Cmp(paid) != 0 {
				t.Errorf("sender went from %v to %v, want it to pay exactly %v", before, after, paid)
			}
			if b := e.balanceOf(t, e.addrs.USDT, e.addrs.BatchTransfer); b.Sign() != 0 {
				t.Errorf("BatchTransfer holds %v tokens", b)
			}
			// Leave no allowance behind for the next case.
			e.send(t, sender, e.addrs.USDT, token.PackApprove(e.addrs.BatchTransfer, big.NewInt(0)))
		})
	}
}

// A token whose transferFrom returns nothing (USDT on Ethereum) counts as success when it does not
// revert, and as failure when it does.
func TestBatchTransferNoReturnToken(t *testing.T) {
	e := setup(t)
	nrt, err := contracts.Deploy(e.ctx, e.cl, e.deployer.Key, e.chainID, &bindings.NoReturnTokenMetaData)
	if err != nil {
		t.Fatal(err)
	}
	nr := bindings.NewNoReturnToken()
	sender := e.deployer
	e.send(t, sender, nrt, nr.PackMint(sender.Address, usdt(10)))
	e.send(t, sender, nrt, nr.PackApprove(e.addrs.BatchTransfer, usdt(10)))
	to := newRecipients(t, 3)
	// 4 + 5 fit the balance of 10; the last 4 does not and reverts inside the token.
	transfers := []multicall.Transfer{{To: to[0], Amount: usdt(4)}, {To: to[1], Amount: usdt(5)}, {To: to[2], Amount: usdt(4)}}
	data, err := multicall.ERC20Batch(nrt, transfers)
	if err != nil {
		t.Fatal(err)
	}
	res, err := multicall.ParseTransferResults(e.addrs.BatchTransfer, e.send(t, sender, e.addrs.BatchTransfer, data))
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{4, 5, 0}
	for i, r := range res {
		if r.Success != (want[i] != 0) {
			t.Errorf("item %d success=%v, want %v", i, r.Success, want[i] != 0)
		}
		if got := e.balanceOf(t, nrt, to[i]); got.Cmp(usdt(want[i])) != 0 {
			t.Errorf("recipient %d holds %v, want %v", i, got, usdt(want[i]))
		}
	}
	if got := e.balanceOf(t, nrt, sender.Address); got.Cmp(usdt(1)) != 0 {
		t.Errorf("sender holds %v, want 1 USDT", got)
	}
}

// Calls that can never be right revert the whole call, with a typed error.
func TestBatchTransferReverts(t *testing.T) {
	e := setup(t)
	eoa := testenv.NewAccount(t).Address
	to := newRecipients(t, 2)
	one := []*big.Int{big.NewInt(1)}
	two := []*big.Int{big.NewInt(1), big.NewInt(2)}
	cases := []struct {
		name string
		data []byte
		want []byte // error selector
	}{
		{"token is an EOA", batch.PackBatchTransfer(eoa, to, two), bindings.BatchTransferNotAContractErrorID().Bytes()[:4]},
		{"token is the zero address", batch.PackBatchTransfer(common.Address{}, to, two), bindings.BatchTransferNotAContractErrorID().Bytes()[:4]},
		{"fewer amounts than recipients", batch.PackBatchTransfer(e.addrs.USDT, to, one), bindings.BatchTransferLengthMismatchErrorID().Bytes()[:4]},
		{"more amounts than recipients", batch.PackBatchTransfer(e.addrs.USDT, to[:1], two), bindings.BatchTransferLengthMismatchErrorID().Bytes()[:4]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.cl.CallContract(e.ctx, ethereum.CallMsg{From: e.deployer.Address, To: &e.addrs.BatchTransfer, Data: tc.data}, nil)
			if err == nil {
				t.Fatal("call did not revert")
			}
			data := revertData(t, err)
			if !bytes.HasPrefix(data, tc.want) {
				t.Fatalf("reverted with %x, want selector %x", data, tc.want)
			}
			decoded, err := batch.UnpackError(data)
			if err != nil {
				t.Fatalf("decode revert %x: %v", data, err)
			}
			t.Logf("reverted: %T%+v", decoded, decoded)
		})
	}
	// Mined anyway (fixed gas limit), the revert moves nothing.
	rcpt, err := contracts.Transact(e.ctx, e.cl, e.deployer.Key, e.chainID, e.addrs.BatchTransfer, nil, cases[0].data, 200_000)
	if err == nil || rcpt == nil || rcpt.Status != 0 {
		t.Fatalf("mined batch with an EOA token: receipt %+v, err %v; want a reverted receipt", rcpt, err)
	}
}

// Gas of an ERC-20 batch to new recipients, per transfer, against one plain transfer.
func TestBatchTransferGas(t *testing.T) {
	e := setup(t)
	sender := e.deployer
	const n = 100
	to := newRecipients(t, n+1)
	transfers := make([]multicall.Transfer, n)
	for i := range transfers {
		transfers[i] = multicall.Transfer{To: to[i], Amount: usdt(1)}
	}
	if err := contracts.Mint(e.ctx, e.cl, sender.Key, e.chainID, e.addrs.USDT, sender.Address, usdt(n+1)); err != nil {
		t.Fatal(err)
	}
	e.send(t, sender, e.addrs.USDT, token.PackApprove(e.addrs.BatchTransfer, usdt(n)))
	data, err := multicall.ERC20Batch(e.addrs.USDT, transfers)
	if err != nil {
		t.Fatal(err)
	}
	rcpt, err := contracts.Transact(e.ctx, e.cl, sender.Key, e.chainID, e.addrs.BatchTransfer, nil, data, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := multicall.ParseTransferResults(e.addrs.BatchTransfer, rcpt.Logs)
	if err != nil || len(res) != n {
		t.Fatalf("%d results, %v", len(res), err)
	}
	for _, r := range res {
		if !r.Success {
			t.Fatalf("item %d failed", r.Index)
		}
	}
	single, err := contracts.Transact(e.ctx, e.cl, sender.Key, e.chainID, e.addrs.USDT, nil, token.PackTransfer(to[n], usdt(1)), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ERC-20 batch of %d to new recipients: %d gas, %d per transfer; one plain transfer to a new recipient: %d gas",
		n, rcpt.GasUsed, rcpt.GasUsed/n, single.GasUsed)
	if rcpt.GasUsed/n >= single.GasUsed {
		t.Errorf("batching costs %d per transfer, no less than a plain transfer (%d)", rcpt.GasUsed/n, single.GasUsed)
	}
}
