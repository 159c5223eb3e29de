package chaos

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/sqsq"
	"github.com/sluice-custody/sluice/internal/testenv"
)

func TestKeyScanFindsEveryFormAndNeverPrintsTheKey(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0xa0 + i)
	}
	h := hex.EncodeToString(key)
	forms := map[string]string{
		"hex":              "msg=signing key=" + h,
		"0x hex":           `{"k":"0x` + h + `"}`,
		"upper hex":        "KEY " + strings.ToUpper(h),
		"0X upper hex":     "0X" + strings.ToUpper(h),
		"base64":           "k=" + base64.StdEncoding.EncodeToString(key),
		"base64 url raw":   "k=" + base64.RawURLEncoding.EncodeToString(key),
		"raw bytes in row": "\x00\x01" + string(key) + "\x02",
	}
	for name, data := range forms {
		var ks KeyScan
		s := keyScanner{forms: keyForms([]secretKey{{"hot wallet", key}}), out: &ks}
		s.scan("logs/signer-1.log", []byte("first line\n"+data+"\n"))
		if len(ks.Hits) == 0 {
			t.Errorf("%s: not found", name)
			continue
		}
		for _, hit := range ks.Hits {
			if !strings.Contains(hit, "hot wallet") || !strings.Contains(hit, "logs/signer-1.log line 2") {
				t.Errorf("%s: hit %q does not say which key and where", name, hit)
			}
			low := strings.ToLower(hit)
			if strings.Contains(low, h[:16]) || strings.Contains(hit, base64.RawStdEncoding.EncodeToString(key)[:16]) {
				t.Errorf("%s: hit %q prints the key", name, hit)
			}
		}
	}
	// Another key, the address, or half the key are not hits.
	var ks KeyScan
	s := keyScanner{forms: keyForms([]secretKey{{"funder", key}}), out: &ks}
	s.scan("table sent_transactions, row 1, column raw_tx", []byte(h[:40]+" "+base64.StdEncoding.EncodeToString(key[:16])))
	if len(ks.Hits) != 0 {
		t.Errorf("partial key material counted as hits: %v", ks.Hits)
	}
}

// The scan reads every table of the run's database and every message on its SQS queues: a key written
// into a row or a message body is found there.
func TestKeyScanReadsRowsAndQueueMessages(t *testing.T) {
	ctx := context.Background()
	db, _ := testenv.Store(t)
	var dbName string
	if err := db.DB.QueryRowContext(ctx, `SELECT DATABASE()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	q, err := sqsq.New(ctx, sqsq.Config{Region: "us-east-1", Endpoint: testenv.SQSEndpoint(t), Prefix: testenv.UniqueName(t) + "-",
		AccessKeyID: "test", SecretAccessKey: "test", VisibilityTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, name := range queue.AllQueues() {
			out, err := q.Client().GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.PhysicalName(name))})
			if err == nil {
				_, _ = q.Client().DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
			}
		}
	})
	if err := q.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(7 * i)
	}
	r := &run{o: Options{Dir: t.TempDir()}, db: db, dbName: dbName, sqs: q, keys: []secretKey{{"hot wallet", key}}}
	if err := os.MkdirAll(filepath.Join(r.o.Dir, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.o.Dir, "logs", "api-1.log"), []byte("{\"msg\":\"clean\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	clean, err := r.scanForKeys(ctx, map[string][]byte{"api-1": []byte("sluice_up 1\n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(clean.Hits) != 0 || clean.Tables < 5 || clean.LogFiles != 1 || clean.MetricsScrapes != 1 {
		t.Fatalf("clean run: %s, hits %v: want every table read and nothing found", clean, clean.Hits)
	}

	if _, err := db.EnsureAPIClient(ctx, "leak-0x"+strings.ToUpper(hex.EncodeToString(key))[:40], "key-"+testenv.UniqueName(t)); err != nil {
		t.Fatal(err) // a partial key in a row: not a hit
	}
	if _, err := db.DB.ExecContext(ctx, `INSERT INTO api_clients (name, key_hash, key_prefix) VALUES (?, ?, ?)`,
		"leak", key, "x"); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx, queue.SignedTxDLQ, []byte(`{"debug":"`+base64.StdEncoding.EncodeToString(key)+`"}`), queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := r.scanForKeys(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(got.Hits, "\n")
	if len(got.Hits) != 2 || !strings.Contains(joined, "table api_clients") || !strings.Contains(joined, "column key_hash") ||
		!strings.Contains(joined, "SQS queue "+queue.SignedTxDLQ) || got.QueueMessages != 1 {
		t.Fatalf("scan: %s, hits:\n%s\nwant the row and the DLQ message", got, joined)
	}
}
