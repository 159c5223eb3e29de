package keys_test

import (
	"context"
	"errors"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/txerr"
)

// A SecretKey signs exactly as go-ethereum does (RFC 6979, low s), from protected memory.
func TestSecretKeySignsLikeGoEthereum(t *testing.T) {
	for i := range 16 {
		k, _ := crypto.GenerateKey()
		raw := crypto.FromECDSA(k)
		sk, err := keys.SecretKeyFrom(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range raw {
			if b != 0 {
				t.Fatal("SecretKeyFrom left the caller's copy of the key")
			}
		}
		if sk.Address() != crypto.PubkeyToAddress(k.PublicKey) {
			t.Fatal("address")
		}
		hash := crypto.Keccak256([]byte{byte(i)})
		got, err := sk.SignHash(hash)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := crypto.Sign(hash, k)
		if string(got) != string(want) {
			t.Fatalf("signature %x, go-ethereum %x", got, want)
		}
		if i == 0 {
			t.Logf("key memory locked against swap: %v", sk.Locked())
		}
		sk.Destroy()
		sk.Destroy()
		if _, err := sk.SignHash(hash); !errors.Is(err, keys.ErrDestroyed) {
			t.Fatalf("sign after destroy: %v", err)
		}
	}
	for _, bad := range [][]byte{make([]byte, 32), crypto.S256().Params().N.Bytes(), make([]byte, 31)} {
		if _, err := keys.SecretKeyFrom(bad); !errors.Is(err, keys.ErrInvalidKey) {
			t.Fatalf("%x accepted as a key: %v", bad, err)
		}
	}
	g, err := keys.GenerateSecretKey()
	if err != nil || g.Address() == (common.Address{}) {
		t.Fatalf("generate: %v", err)
	}
	signed, err := keys.SignTx(dynamicTx(1), big.NewInt(31337), g.Address(), g.SignHash)
	if err != nil {
		t.Fatal(err)
	}
	if from, _ := types.Sender(types.LatestSignerForChainID(big.NewInt(31337)), signed); from != g.Address() {
		t.Fatal("sender")
	}
	// A signature by a key that is not the wallet's is refused, retryably.
	other, _ := keys.GenerateSecretKey()
	if _, err := keys.SignTx(dynamicTx(1), big.NewInt(31337), g.Address(), other.SignHash); !errors.Is(err, keys.ErrKeyUnavailable) || !txerr.IsRetryable(err) {
		t.Fatalf("foreign signature: %v", err)
	}
}

type counted struct {
	destroyed *atomic.Int32
}

func (c counted) Destroy() { c.destroyed.Add(1) }

func TestCacheExpiresAndCloses(t *testing.T) {
	var destroyed, loads atomic.Int32
	c := keys.NewCache[counted](100 * time.Millisecond)
	load := func(context.Context) (counted, error) { loads.Add(1); return counted{&destroyed}, nil }
	ctx := context.Background()
	for range 3 {
		if _, err := c.Get(ctx, "a", load); err != nil {
			t.Fatal(err)
		}
	}
	if loads.Load() != 1 || c.Len() != 1 {
		t.Fatalf("loads %d len %d", loads.Load(), c.Len())
	}
	time.Sleep(300 * time.Millisecond)
	if destroyed.Load() != 1 || c.Len() != 0 {
		t.Fatalf("after TTL: destroyed %d len %d", destroyed.Load(), c.Len())
	}
	// A failed load is not cached.
	boom := errors.New("boom")
	if _, err := c.Get(ctx, "b", func(context.Context) (counted, error) { return counted{}, boom }); !errors.Is(err, boom) || c.Len() != 0 {
		t.Fatalf("failed load: %v, len %d", err, c.Len())
	}
	_, _ = c.Get(ctx, "a", load)
	_, _ = c.Get(ctx, "c", load)
	c.Close()
	if destroyed.Load() != 3 {
		t.Fatalf("close destroyed %d entries in all, want 3", destroyed.Load())
	}
	if _, err := c.Get(ctx, "a", load); !errors.Is(err, keys.ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
}

func TestRouterNeverFallsBack(t *testing.T) {
	dir := t.TempDir()
	ks, err := keys.NewKeystore(dir, password, keys.WithLightScrypt())
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	a, _ := ks.NewAccount()
	b, _ := ks.NewAccount()
	r, err := keys.NewRouter(map[common.Address]keys.Route{a: {Backend: "keystore", Provider: ks}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Signer(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	// b's key is in the same keystore, but b is not routed there: refused, retryable.
	_, err = r.Signer(context.Background(), b)
	if !errors.Is(err, keys.ErrUnknownAddress) || !errors.Is(err, keys.ErrKeyUnavailable) || !txerr.IsRetryable(err) {
		t.Fatalf("unrouted: %v", err)
	}
	if r.Backend(a) != "keystore" || r.Close() != nil {
		t.Fatal("backend / close")
	}
}

// One caller giving up does not fail the load the others are waiting for.
func TestCacheLoadOutlivesAnImpatientCaller(t *testing.T) {
	var destroyed atomic.Int32
	c := keys.NewCache[counted](time.Minute)
	defer c.Close()
	release := make(chan struct{})
	load := func(ctx context.Context) (counted, error) {
		select {
		case <-release:
			return counted{&destroyed}, nil
		case <-ctx.Done():
			return counted{}, ctx.Err()
		}
	}
	impatient, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := c.Get(impatient, "a", load); first <- err }()
	time.Sleep(20 * time.Millisecond)
	second := make(chan error, 1) // joins the load the impatient caller started
	go func() { _, err := c.Get(context.Background(), "a", load); second <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("impatient caller: %v", err)
	}
	close(release)
	if err := <-second; err != nil {
		t.Fatalf("patient caller: %v", err)
	}
	if c.Len() != 1 {
		t.Fatalf("%d entries, want the one shared load", c.Len())
	}
}
