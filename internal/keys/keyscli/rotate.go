package keyscli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/accountmgr"
	sluicechain "github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/keys/kms"
	"github.com/sluice-custody/sluice/internal/keys/secretsmanager"
	"github.com/sluice-custody/sluice/internal/keys/source"
	"github.com/sluice-custody/sluice/internal/store"
)

// rotateArgs are the flags of `sluice keys rotate`.
type rotateArgs struct {
	chain, from, backend, secretID, kmsKeyID, newAddr string
}

// rotate is step one of a wallet-key rotation (docs/keys.md "Rotating a wallet key"): it creates (or
// takes) the new wallet's key, proves it signs for its address through the signer's own key path, and
// prints the configuration change that starts the old wallet draining. It changes no configuration
// itself: Sluice's configuration is a file (or environment) the operator owns and deploys.
func rotate(ctx context.Context, cfg *config.Config, a rotateArgs, stdout io.Writer) error {
	ch, ok := cfg.Chain(a.chain)
	if !ok {
		return fmt.Errorf("keys rotate: --chain %q is not a configured chain", a.chain)
	}
	old, err := config.ParseAddress(a.from)
	if err != nil || !ch.IsHotWallet(old) {
		return fmt.Errorf("keys rotate: --from %q is not a hot wallet of %s", a.from, a.chain)
	}
	if ch.IsDraining(old) {
		return fmt.Errorf("keys rotate: %s is already draining on %s; run `sluice keys retire` once it is empty", old.Hex(), a.chain)
	}
	wk := config.WalletKey{Chain: ch.Name, Backend: a.backend}
	switch a.backend {
	case config.KeyBackendSecretsManager:
		if a.secretID == "" {
			return errors.New("keys rotate: --secret-id is required with --backend secretsmanager")
		}
		addr, err := createSecret(ctx, cfg, *ch, a.secretID)
		if err != nil {
			return err
		}
		wk.Address, wk.SecretID = addr.Hex(), a.secretID
	case config.KeyBackendKMS:
		if a.kmsKeyID == "" {
			return errors.New("keys rotate: --kms-key-id is required with --backend kms (create the key in KMS first: ECC_SECG_P256K1, SIGN_VERIFY)")
		}
		api, err := source.KMSClient(ctx, cfg)
		if err != nil {
			return err
		}
		addr, err := kms.KeyAddress(ctx, api, a.kmsKeyID)
		if err != nil {
			return err
		}
		wk.Address, wk.KMSKeyID = addr.Hex(), a.kmsKeyID
	case config.KeyBackendKeystore:
		// The keystore takes a key already in keys.dir (geth account new, or sluice dev): a password
		// typed here would have to be the keystore's one password anyway.
		addr, err := config.ParseAddress(a.newAddr)
		if err != nil {
			return errors.New("keys rotate: --new ADDRESS (a key already in keys.dir) is required with --backend keystore")
		}
		wk.Address = addr.Common().Hex()
	default:
		return fmt.Errorf("keys rotate: --backend %q: want secretsmanager, kms or keystore", a.backend)
	}
	newAddr := common.HexToAddress(wk.Address)
	if ch.IsHotWallet(config.Address(newAddr)) || newAddr == ch.MainAccount.Common() {
		return fmt.Errorf("keys rotate: %s is already a hot wallet or the main account of %s", newAddr.Hex(), ch.Name)
	}
	if err := verifyNew(ctx, cfg, wk, ch.ChainID); err != nil {
		return fmt.Errorf("keys rotate: the new key does not sign for %s: %w", newAddr.Hex(), err)
	}
	return printRotation(stdout, *ch, old.Common(), wk)
}

// createSecret is `keys create`: a key generated in memory, doubly encrypted, stored as secretID.
func createSecret(ctx context.Context, cfg *config.Config, ch config.Chain, secretID string) (common.Address, error) {
	k, err := keys.GenerateSecretKey()
	if err != nil {
		return common.Address{}, err
	}
	defer k.Destroy()
	api, err := source.SecretsManagerClient(ctx, cfg)
	if err != nil {
		return common.Address{}, err
	}
	master, err := source.Master(ctx, cfg, api)
	if err != nil {
		return common.Address{}, err
	}
	if c, ok := master.(io.Closer); ok {
		defer c.Close()
	}
	if _, err := secretsmanager.Create(ctx, api, master, secretID, ch.ChainID, k); err != nil {
		return common.Address{}, err
	}
	return k.Address(), nil
}

// verifyNew opens wk through source.Open, the signer's own path, on a copy of cfg that lists it, and
// signs a transaction that is never sent.
func verifyNew(ctx context.Context, cfg *config.Config, wk config.WalletKey, chainID uint64) error {
	c := *cfg
	c.Keys.Wallets = append(append([]config.WalletKey(nil), cfg.Keys.Wallets...), wk)
	set, err := source.Open(ctx, &c, nil, nil, source.Options{})
	if err != nil {
		return err
	}
	defer set.Close()
	return verifyOne(ctx, set, walletRow{chain: wk.Chain, chainID: chainID, addr: common.HexToAddress(wk.Address), backend: wk.Backend})
}

func printRotation(w io.Writer, ch config.Chain, old common.Address, wk config.WalletKey) error {
	var b strings.Builder
	fmt.Fprintf(&b, "new wallet %s on %s (%s) signs for its address.\n\n", wk.Address, ch.Name, wk.Backend)
	fmt.Fprintf(&b, "1. Add it and start draining %s (configuration, then restart signer and accountmgr):\n\n", old.Hex())
	if wk.Backend != config.KeyBackendKeystore {
		b.WriteString("   keys:\n     wallets:\n")
		fmt.Fprintf(&b, "       - {chain: %s, address: %q, backend: %s", wk.Chain, wk.Address, wk.Backend)
		if wk.SecretID != "" {
			fmt.Fprintf(&b, ", secret_id: %s", wk.SecretID)
		}
		if wk.KMSKeyID != "" {
			fmt.Fprintf(&b, ", kms_key_id: %s", wk.KMSKeyID)
		}
		b.WriteString("}\n")
	}
	fmt.Fprintf(&b, "   chains:\n     - name: %s\n       hot_wallets:\n", ch.Name)
	for _, h := range ch.HotWallets {
		fmt.Fprintf(&b, "         - %q\n", h.Common().Hex())
	}
	fmt.Fprintf(&b, "         - %q   # new\n       draining_wallets:\n", wk.Address)
	for _, d := range ch.DrainingWallets {
		fmt.Fprintf(&b, "         - %q\n", d.Common().Hex())
	}
	fmt.Fprintf(&b, "         - %q\n\n", old.Hex())
	b.WriteString("   (draining_wallets is read from the configuration file only)\n\n")
	b.WriteString("2. The new wallet is topped up by accountmgr like any other; the old one gets no new withdrawals, its\n" +
		"   transactions in flight confirm (recovery still bumps them), then accountmgr sweeps what it holds to\n" +
		"   the main account.\n")
	fmt.Fprintf(&b, "3. `sluice keys retire --chain %s --address %s` says when it is empty; then remove it from\n"+
		"   hot_wallets, draining_wallets and keys.wallets. Keep its secret or KMS key disabled, not deleted,\n"+
		"   until the retention period you keep for audit has passed.\n", ch.Name, old.Hex())
	_, err := io.WriteString(w, b.String())
	return err
}

// Balances reads what an account holds on chain.
type Balances interface {
	BalanceAt(ctx context.Context, account common.Address) (*big.Int, error)
	TokenBalance(ctx context.Context, token, holder common.Address) (*big.Int, error)
}

// ErrNotRetirable wraps every reason a wallet cannot be retired yet.
var ErrNotRetirable = errors.New("wallet cannot be retired yet")

// RetireCheck says whether addr, a draining wallet of ch, can have its key retired: nothing of its own
// under way (store.DrainState) and nothing left on chain — no token of any configured asset, and at
// most the sweep reserve (accountmgr.SweepReserve) of the native coin. nil means it can.
func RetireCheck(ctx context.Context, st *store.Store, node Balances, ch config.Chain, addr config.Address) error {
	if !ch.IsHotWallet(addr) {
		return fmt.Errorf("%s is not a hot wallet of %s (already retired?)", addr.Hex(), ch.Name)
	}
	if !ch.IsDraining(addr) {
		return fmt.Errorf("%w: %s is not draining on %s: start with `sluice keys rotate`", ErrNotRetirable, addr.Hex(), ch.Name)
	}
	busy, err := st.DrainState(ctx, ch.Name, addr.Hex())
	if err != nil {
		return err
	}
	if !busy.Idle() {
		return fmt.Errorf("%w: %s still has %s", ErrNotRetirable, addr.Hex(), busy)
	}
	var left []string
	for _, asset := range ch.Assets {
		var bal *big.Int
		if asset.Native() {
			if bal, err = node.BalanceAt(ctx, addr.Common()); err == nil && bal.Cmp(accountmgr.SweepReserve(ch)) <= 0 {
				continue
			}
		} else {
			if bal, err = node.TokenBalance(ctx, asset.Address.Common(), addr.Common()); err == nil && bal.Sign() == 0 {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("%s balance of %s: %w", asset.Symbol, addr.Hex(), err)
		}
		left = append(left, fmt.Sprintf("%s %s", bal, asset.Symbol))
	}
	if len(left) > 0 {
		return fmt.Errorf("%w: %s still holds %s (accountmgr sweeps the assets with a top_up band; move the others by hand)",
			ErrNotRetirable, addr.Hex(), strings.Join(left, ", "))
	}
	return nil
}

// retire is `sluice keys retire`: RetireCheck against the configured database and the chain's node.
func retire(ctx context.Context, cfg *config.Config, chain, address string, stdout io.Writer) error {
	ch, ok := cfg.Chain(chain)
	if !ok {
		return fmt.Errorf("keys retire: --chain %q is not a configured chain", chain)
	}
	addr, err := config.ParseAddress(address)
	if err != nil {
		return fmt.Errorf("keys retire: --address: %w", err)
	}
	st, err := store.Open(ctx, cfg.Database.DSN, 2)
	if err != nil {
		return err
	}
	defer st.Close()
	node, err := sluicechain.Dial(ctx, ch.Name, ch.ChainID, ch.RPC, ch.RPCTimeout.Duration)
	if err != nil {
		return err
	}
	defer node.Close()
	if err := RetireCheck(ctx, st, node, *ch, addr); err != nil {
		return fmt.Errorf("keys retire: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s on %s is empty and idle: remove it from hot_wallets, draining_wallets and keys.wallets, then disable its key\n",
		addr.Hex(), ch.Name)
	return err
}
