package api

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkCreateWithdrawal posts distinct withdrawals over real HTTP into real MariaDB, in parallel
// (go test -run XXX -bench CreateWithdrawal -cpu 2 ./api/, with -benchtime 10s for a steadier number).
// It reports accepted creates per second; the target is ≥ 2,000/s with p99 < 50 ms on 2 cores.
func BenchmarkCreateWithdrawal(b *testing.B) {
	e := newEnv(b, func(d *Deps) { d.RateLimit = -1 })
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	cl := &http.Client{Transport: tr}
	var seq atomic.Int64
	var created atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			body := []byte(`{"external_id":"bench-` + strconv.FormatInt(n, 10) + `","chain":"local","asset":"USDT","to":"` + toAddr + `","amount":"12.5"}`)
			req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v1/withdrawals", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+aliceKey)
			res, err := cl.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusCreated {
				created.Add(1)
			}
		}
	})
	b.ReportMetric(float64(created.Load())/b.Elapsed().Seconds(), "creates/s")
}
