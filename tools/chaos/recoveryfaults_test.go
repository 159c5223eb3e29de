package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

func TestRecoveryScheduleIsSeededAndInsidePosting(t *testing.T) {
	f := RecoveryFaults{FeeSurges: 2, ForeignNonces: 1, Reorgs: 2, DroppedSends: 5}
	postFor := 40 * time.Second
	a, b := recoverySchedule(7, f, postFor), recoverySchedule(7, f, postFor)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different schedules:\n%v\n%v", a, b)
	}
	if slices.Equal(a, recoverySchedule(8, f, postFor)) {
		t.Fatal("seeds 7 and 8 gave the same schedule")
	}
	kinds := map[string]int{}
	for i, p := range a {
		kinds[p.kind]++
		if p.at < postFor/10 || p.at > postFor*9/10 {
			t.Errorf("%s at %s, outside the middle of %s of posting", p.kind, p.at, postFor)
		}
		if i > 0 && p.at < a[i-1].at {
			t.Errorf("schedule not in time order: %v", a)
		}
	}
	want := map[string]int{faultFeeSurge: 2, faultForeign: 1, faultReorg: 2}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	if got := recoverySchedule(7, RecoveryFaults{}, postFor); len(got) != 0 {
		t.Fatalf("no faults asked, schedule %v", got)
	}
}

// rawSend posts an eth_sendRawTransaction of tx and returns the result it got (empty on a failure).
func rawSend(t *testing.T, c *http.Client, url string, tx *types.Transaction, id int) string {
	t.Helper()
	raw, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_sendRawTransaction","params":[%q]}`, id, hexutil.Encode(raw))
	resp, err := c.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var out struct {
		ID     int    `json:"id"`
		Result string `json:"result"`
	}
	if json.NewDecoder(resp.Body).Decode(&out) != nil || out.ID != id {
		return ""
	}
	return out.Result
}

func TestProxySilentlyDropsSendsUpToItsBudget(t *testing.T) {
	node := &fakeNode{}
	p := startProxy(t, node, ProxyOptions{Rate: 0, SendRate: 0, Seed: 3, SilentDrops: 4, SilentDropRate: 0.5})
	key, _ := crypto.GenerateKey()
	signer := types.LatestSignerForChainID(big.NewInt(31337))
	c := &http.Client{Timeout: 5 * time.Second}
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	const n = 40
	silent := 0
	for i := range n {
		tx := types.MustSignNewTx(key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(31337), Nonce: uint64(i), Gas: 21000,
			GasFeeCap: big.NewInt(1), To: &to, Value: big.NewInt(0)})
		got := rawSend(t, c, p.URL, tx, i)
		switch got {
		case tx.Hash().Hex():
			silent++ // answered by the proxy with the hash: the fake node answers "0x1"
		case "0x1":
		default:
			t.Fatalf("send %d: answer %q", i, got)
		}
	}
	if silent != 4 || p.Counts()[FaultSendSilentlyDropped] != 4 {
		t.Fatalf("%d sends answered without forwarding (counted %d), want the budget, 4", silent, p.Counts()[FaultSendSilentlyDropped])
	}
	if got := node.sends.Load(); got != n-4 {
		t.Fatalf("node got %d sends, want %d", got, n-4)
	}
	// Other methods are never silently answered.
	for i := range 20 {
		if !call(t, c, p.URL, "eth_blockNumber", 100+i) {
			t.Fatalf("eth_blockNumber %d failed", i)
		}
	}
}

func TestSumMetricAddsInstancesAndLabels(t *testing.T) {
	scrapes := map[string][]byte{
		"recovery-1": []byte("# HELP sluice_recovery_bumps_total x\nsluice_recovery_bumps_total{chain=\"local\"} 3\nsluice_recovery_bumps_totalx 9\n"),
		"recovery-2": []byte("sluice_recovery_bumps_total{chain=\"local\"} 2\nsluice_recovery_bumps_total{chain=\"other\"} 1\n"),
	}
	if got := sumMetric(scrapes, "sluice_recovery_bumps_total"); got != 6 {
		t.Fatalf("sum %d, want 6", got)
	}
}
