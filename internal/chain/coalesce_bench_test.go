package chain_test

import (
	"fmt"
	"math/big"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/chain"
)

// BenchmarkCodeAt is the recipient check's eth_getCode of random destinations from many concurrent
// creates, straight through the client and through the coalescer, against a node in this process: the
// CPU per call is both sides', as on a machine running the API beside its node.
//
//	go test -run '^$' -bench CodeAt -benchtime 5s ./internal/chain/
func BenchmarkCodeAt(b *testing.B) {
	node, _ := coalesceChain(b)
	c, err := chain.Dial(b.Context(), "local", chainID, []string{node.URL}, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	run := func(b *testing.B, codeAt func(common.Address) error) {
		var seq atomic.Int64
		var before, after syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		start := time.Now()
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := codeAt(common.BigToAddress(big.NewInt(1_000_000_000 + seq.Add(1)))); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		elapsed := time.Since(start)
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		cpu := time.Duration(syscall.TimevalToNsec(after.Utime) - syscall.TimevalToNsec(before.Utime) +
			syscall.TimevalToNsec(after.Stime) - syscall.TimevalToNsec(before.Stime))
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/call")
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	}
	b.Run("direct", func(b *testing.B) {
		run(b, func(a common.Address) error { _, err := c.CodeAt(b.Context(), a, nil); return err })
	})
	for _, n := range []int{1, 2, 4} {
		q := chain.NewCoalescer(c, chain.WithInFlight(n))
		b.Run(fmt.Sprintf("coalesced/inflight=%d", n), func(b *testing.B) {
			run(b, func(a common.Address) error { _, err := q.CodeAt(b.Context(), a, nil); return err })
		})
	}
}
