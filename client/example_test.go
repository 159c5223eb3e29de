package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/sluice-custody/sluice/client"
)

// Create a withdrawal, retrying transient failures with the same external_id (creates are idempotent).
func Example_create() {
	c := client.New("https://sluice.internal:3000", os.Getenv("SLUICE_API_KEY"), nil)
	ctx := context.Background()
	req := client.CreateWithdrawal{
		ExternalID: "payout-84721", // your own id: the idempotency key
		Chain:      "polygon",
		Asset:      "USDT",
		To:         "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		Amount:     "125.50", // whole units, as a string
	}
	for attempt := 0; ; attempt++ {
		w, created, err := c.CreateWithdrawal(ctx, req)
		var apiErr *client.Error
		switch {
		case err == nil:
			log.Printf("withdrawal %s %s (new: %v)", w.ID, w.Status, created)
			if w.Status == client.StatusAwaitingApproval {
				log.Printf("held for approval; a withdrawal.awaiting_approval webhook was sent")
			}
			return
		case errors.As(err, &apiErr) && apiErr.Code == "limit_exceeded":
			// A policy refusal: the message names the rule (daily_total, max_amount, velocity,
			// denylist, allowlist). Do not retry; tell the user or split the payout.
			log.Printf("refused: %s (field %s)", apiErr.Message, apiErr.Field)
			return
		case errors.As(err, &apiErr) && apiErr.Code == "recipient_refused":
			log.Printf("bad destination: %s", apiErr.Message)
			return
		case errors.As(err, &apiErr) && !apiErr.Retryable():
			log.Printf("invalid request: %v", apiErr) // 4xx: fix the request
			return
		case attempt >= 5:
			log.Printf("giving up for now, retry later with the same external_id: %v", err)
			return
		}
		time.Sleep(time.Duration(1<<attempt) * 200 * time.Millisecond) // 429, 5xx or network error
	}
}

// A webhook receiver: verify the signature on the raw body, de-duplicate on the event id, answer 2xx
// quickly. Anything else is retried by Sluice for 24 h.
func Example_webhookReceiver() {
	secret := os.Getenv("SLUICE_WEBHOOK_SECRET")
	var (
		mu   sync.Mutex
		seen = map[string]bool{} // use your database in production: a unique key on the event id
	)
	http.HandleFunc("/sluice/webhooks", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		if err := client.VerifySignature(r.Header.Get(client.HeaderSignature), body, secret, client.DefaultTolerance, time.Now()); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev client.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		mu.Lock()
		dup := seen[ev.ID]
		seen[ev.ID] = true
		mu.Unlock()
		if !dup {
			log.Printf("%s: withdrawal %s (%s) is %s", ev.Type, ev.Data.WithdrawalID, ev.Data.ExternalID, ev.Data.Status)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe(":8443", nil))
}

// The poll fallback: withdrawals not final after a while (a missed or delayed webhook) are read back.
func Example_pollFallback() {
	c := client.New("https://sluice.internal:3000", os.Getenv("SLUICE_API_KEY"), nil)
	ctx := context.Background()
	for _, status := range []string{client.StatusBroadcasted, client.StatusSigned, client.StatusPending} {
		opts := client.ListOptions{Status: status, CreatedTo: time.Now().Add(-10 * time.Minute), Limit: 200}
		for {
			page, err := c.ListWithdrawals(ctx, opts)
			if err != nil {
				log.Printf("poll: %v", err)
				return
			}
			for _, w := range page.Withdrawals {
				log.Printf("still %s: %s (%s)", w.Status, w.ID, w.ExternalID)
			}
			if page.NextCursor == nil {
				break
			}
			opts.Cursor = *page.NextCursor
		}
	}
}
