package recovery

import "github.com/sluice-custody/sluice/internal/config"

// signingWallets are the addresses Sluice signs from on a chain, whose nonce streams recovery keeps
// whole: the hot wallets and, when the chain has one, the main account top-ups come from (its key signs
// gap fills too: txsend.MainAccountKinds).
func signingWallets(c config.Chain) []config.Address {
	ws := append([]config.Address(nil), c.HotWallets...)
	if !c.MainAccount.IsZero() {
		ws = append(ws, c.MainAccount)
	}
	return ws
}
