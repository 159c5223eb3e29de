// Package keyscli is `sluice keys`: create, import, list and verify wallet keys (docs/keys.md). Key
// material is read from stdin only, never from arguments, and nothing secret is ever printed.
package keyscli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/keys/secretsmanager"
	"github.com/sluice-custody/sluice/internal/keys/source"
)

const keysUsage = `usage: sluice keys <command> [flags]

commands (wallet keys in AWS Secrets Manager, see docs/keys.md):
  create       --chain NAME --secret-id ID   new key, generated in memory, doubly encrypted, stored;
                                             prints only its address
  import       --chain NAME --secret-id ID [--keystore FILE]
                                             a hex key read from stdin, or a keystore file whose
                                             password is read from stdin (never from arguments)
  init-master  --secret-id ID                a master key secret (for setups without KMS)
  reseal       --chain NAME --secret-id ID   re-encrypts a wallet secret under a fresh data key and
                                             the master key's current version (after a master
                                             rotation); the old value stays as AWSPREVIOUS
  list                                       configured wallets and stored key secrets, no values
  verify                                     loads every configured key, checks it signs for its
                                             address, prints nothing secret
  rotate       --chain NAME --from OLD --backend secretsmanager --secret-id ID
               --chain NAME --from OLD --backend kms --kms-key-id ID
               --chain NAME --from OLD --backend keystore --new ADDRESS
                                             creates (secretsmanager) or takes the new wallet key,
                                             checks it signs for its address, prints the
                                             configuration change that drains OLD
  retire       --chain NAME --address OLD    exits 0 when the draining wallet OLD has nothing in
                                             flight and nothing left to sweep (reads the database
                                             and the node), else says what remains

flags (every command):
  --config FILE   configuration file (YAML); environment variables override it
`

// Run is `sluice keys ARGS`. stdin carries key material for import; stdout gets only addresses and
// status.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, keysUsage)
		return flag.ErrHelp
	}
	sub := args[0]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	cfgPath := fs.String("config", os.Getenv("SLUICE_CONFIG"), "configuration file")
	chain := fs.String("chain", "", "chain name (create, import)")
	secretID := fs.String("secret-id", "", "secret name (create, import, init-master)")
	ksFile := fs.String("keystore", "", "keystore file to import (its password is read from stdin)")
	var ra rotateArgs
	fs.StringVar(&ra.from, "from", "", "rotate: the hot wallet to drain")
	fs.StringVar(&ra.backend, "backend", "", "rotate: the new key's backend (secretsmanager, kms, keystore)")
	fs.StringVar(&ra.kmsKeyID, "kms-key-id", "", "rotate --backend kms: the new wallet's KMS key")
	fs.StringVar(&ra.newAddr, "new", "", "rotate --backend keystore: the new wallet's address (its key in keys.dir)")
	retireAddr := fs.String("address", "", "retire: the draining wallet")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	switch sub {
	case "create", "import":
		ch, ok := cfg.Chain(*chain)
		if !ok {
			return fmt.Errorf("keys %s: --chain %q is not a configured chain", sub, *chain)
		}
		if *secretID == "" {
			return fmt.Errorf("keys %s: --secret-id is required", sub)
		}
		var k *keys.SecretKey
		if sub == "create" {
			k, err = keys.GenerateSecretKey()
		} else {
			k, err = readKey(stdin, *ksFile)
		}
		if err != nil {
			return err
		}
		defer k.Destroy()
		api, err := source.SecretsManagerClient(ctx, cfg)
		if err != nil {
			return err
		}
		master, err := source.Master(ctx, cfg, api)
		if err != nil {
			return err
		}
		if c, ok := master.(io.Closer); ok {
			defer c.Close()
		}
		if _, err := secretsmanager.Create(ctx, api, master, *secretID, ch.ChainID, k); err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, k.Address().Hex())
		return err
	case "init-master":
		if *secretID == "" {
			return errors.New("keys init-master: --secret-id is required")
		}
		api, err := source.SecretsManagerClient(ctx, cfg)
		if err != nil {
			return err
		}
		return secretsmanager.CreateMasterSecret(ctx, api, *secretID)
	case "reseal":
		return reseal(ctx, cfg, *chain, *secretID, stdout)
	case "list":
		return listKeys(ctx, cfg, stdout)
	case "verify":
		return verifyKeys(ctx, cfg, stdout)
	case "rotate":
		ra.chain, ra.secretID = *chain, *secretID
		return rotate(ctx, cfg, ra, stdout)
	case "retire":
		return retire(ctx, cfg, *chain, *retireAddr, stdout)
	}
	fmt.Fprint(os.Stderr, keysUsage)
	return fmt.Errorf("unknown keys command %q", sub)
}

// reseal opens the configured wallet secret secretID on chain and stores it again as a new version.
func reseal(ctx context.Context, cfg *config.Config, chain, secretID string, stdout io.Writer) error {
	ch, ok := cfg.Chain(chain)
	if !ok {
		return fmt.Errorf("keys reseal: --chain %q is not a configured chain", chain)
	}
	i := slices.IndexFunc(cfg.Keys.Wallets, func(w config.WalletKey) bool {
		return w.Chain == chain && w.Backend == config.KeyBackendSecretsManager && w.SecretID == secretID
	})
	if i < 0 {
		return fmt.Errorf("keys reseal: no secretsmanager wallet with secret %q on %s in keys.wallets", secretID, chain)
	}
	w := secretsmanager.Wallet{Address: common.HexToAddress(cfg.Keys.Wallets[i].Address), ChainID: ch.ChainID, SecretID: secretID}
	api, err := source.SecretsManagerClient(ctx, cfg)
	if err != nil {
		return err
	}
	master, err := source.Master(ctx, cfg, api)
	if err != nil {
		return err
	}
	if c, ok := master.(io.Closer); ok {
		defer c.Close()
	}
	k, err := secretsmanager.Load(ctx, api, master, w)
	if err != nil {
		return err
	}
	defer k.Destroy()
	version, err := secretsmanager.Reseal(ctx, api, master, secretID, ch.ChainID, k)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\t%s\n", w.Address.Hex(), version)
	return err
}

// readKey reads the key to import: a keystore file decrypted with the password on stdin, or a hex
// key on stdin. Every copy of the key this function makes is zeroed before it returns.
func readKey(stdin io.Reader, ksFile string) (*keys.SecretKey, error) {
	in, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("keys import: read stdin: %w", err)
	}
	defer clear(in)
	line := in
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSpace(line)
	if ksFile != "" {
		blob, err := os.ReadFile(ksFile)
		if err != nil {
			return nil, fmt.Errorf("keys import: %w", err)
		}
		k, err := keystore.DecryptKey(blob, string(line))
		if err != nil {
			return nil, errors.New("keys import: the keystore file does not open with that password")
		}
		raw := k.PrivateKey.D.FillBytes(make([]byte, 32))
		clear(k.PrivateKey.D.Bits())
		return keys.SecretKeyFrom(raw)
	}
	line = bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("0x")), []byte("0X"))
	if len(line) != 64 {
		return nil, errors.New("keys import: stdin does not hold a 32-byte hex key")
	}
	raw := make([]byte, 32)
	if _, err := hex.Decode(raw, line); err != nil {
		clear(raw)
		return nil, errors.New("keys import: stdin does not hold a 32-byte hex key")
	}
	k, err := keys.SecretKeyFrom(raw)
	if err != nil {
		return nil, fmt.Errorf("keys import: %w", err)
	}
	return k, nil
}

// walletRow is one configured (chain, wallet) and where its key is.
type walletRow struct {
	chain   string
	chainID uint64
	addr    common.Address
	backend string
	where   string
}

func configuredWallets(cfg *config.Config) []walletRow {
	var rows []walletRow
	listed := map[common.Address]bool{}
	for _, w := range cfg.Keys.Wallets {
		ch, _ := cfg.Chain(w.Chain)
		where := w.SecretID
		switch w.Backend {
		case config.KeyBackendKMS:
			where = w.KMSKeyID
		case config.KeyBackendKeystore:
			where = cfg.Keys.Dir
		}
		a := common.HexToAddress(w.Address)
		listed[a] = true
		rows = append(rows, walletRow{w.Chain, ch.ChainID, a, w.Backend, where})
	}
	for _, ch := range cfg.Chains {
		for _, h := range ch.HotWallets {
			if a := h.Common(); !listed[a] {
				rows = append(rows, walletRow{ch.Name, ch.ChainID, a, config.KeyBackendKeystore, cfg.Keys.Dir})
			}
		}
	}
	return rows
}

func listKeys(ctx context.Context, cfg *config.Config, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHAIN\tADDRESS\tBACKEND\tKEY\tVERSIONS")
	var stored []secretsmanager.Entry
	if cfg.Keys.SecretsManager.Region != "" || cfg.Keys.SecretsManager.Endpoint != "" || slices.ContainsFunc(cfg.Keys.Wallets,
		func(w config.WalletKey) bool { return w.Backend == config.KeyBackendSecretsManager }) {
		api, err := source.SecretsManagerClient(ctx, cfg)
		if err != nil {
			return err
		}
		if stored, err = secretsmanager.List(ctx, api); err != nil {
			return err
		}
	}
	shown := map[string]bool{}
	for _, r := range configuredWallets(cfg) {
		versions := "-"
		if r.backend == config.KeyBackendSecretsManager {
			versions = "missing"
			if i := slices.IndexFunc(stored, func(e secretsmanager.Entry) bool { return e.SecretID == r.where }); i >= 0 {
				versions = stagesText(stored[i].Versions)
				shown[r.where] = true
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.chain, r.addr.Hex(), r.backend, r.where, versions)
	}
	for _, e := range stored {
		if !shown[e.SecretID] {
			fmt.Fprintf(tw, "(chain %d, not configured)\t%s\t%s\t%s\t%s\n", e.ChainID, e.Address.Hex(), config.KeyBackendSecretsManager, e.SecretID, stagesText(e.Versions))
		}
	}
	return tw.Flush()
}

func stagesText(v map[string][]string) string {
	var out []string
	for id, st := range v {
		for _, s := range st {
			out = append(out, s+"="+id)
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "-"
	}
	return fmt.Sprint(out)
}

// verifyKeys loads every configured key through the same path the signer uses and signs a
// transaction that is never sent, checking it recovers to the wallet.
func verifyKeys(ctx context.Context, cfg *config.Config, stdout io.Writer) error {
	set, err := source.Open(ctx, cfg, nil, nil, source.Options{})
	if err != nil {
		return err
	}
	defer set.Close()
	failed := 0
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for _, r := range configuredWallets(cfg) {
		if err := verifyOne(ctx, set, r); err != nil {
			failed++
			fmt.Fprintf(w, "FAILED\t%s\t%s\t%s\t%v\n", r.chain, r.addr.Hex(), r.backend, err)
			continue
		}
		fmt.Fprintf(w, "ok\t%s\t%s\t%s\n", r.chain, r.addr.Hex(), r.backend)
	}
	if failed > 0 {
		return fmt.Errorf("keys verify: %d wallet key(s) unavailable", failed)
	}
	return nil
}

func verifyOne(ctx context.Context, p keys.Provider, r walletRow) error {
	s, err := p.Signer(ctx, r.addr)
	if err != nil {
		return err
	}
	id := new(big.Int).SetUint64(r.chainID)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: id, Gas: 21000, To: &r.addr, GasFeeCap: big.NewInt(1), GasTipCap: big.NewInt(1)})
	signed, err := s.SignTx(ctx, tx, id)
	if err != nil {
		return err
	}
	if from, err := types.Sender(types.LatestSignerForChainID(id), signed); err != nil || from != r.addr {
		return fmt.Errorf("signature recovers to %s, %v", from.Hex(), err)
	}
	return nil
}
