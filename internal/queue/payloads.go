package queue

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/sluice-custody/sluice/internal/txerr"
)

// WithdrawalRequested is the tx-request payload: a withdrawal is ready to be signed.
type WithdrawalRequested struct {
	WithdrawalID string `json:"withdrawal_id"`
}

// TxSigned is the signed-tx payload: a recorded transaction is ready to be broadcast. The raw bytes
// stay in the database (sent_transactions); queues carry only the reference.
type TxSigned struct {
	SentTxID int64  `json:"sent_tx_id"`
	Chain    string `json:"chain"`
	From     string `json:"from"`
	Nonce    uint64 `json:"nonce"`
	Hash     string `json:"hash"`
}

// TxBroadcasted is the tx-monitor payload: a transaction was sent and must be followed to finality.
type TxBroadcasted struct {
	SentTxID int64  `json:"sent_tx_id"`
	Chain    string `json:"chain"`
	Hash     string `json:"hash"`
}

// TxRefeeRequested is a tx-request payload: a node refused the recorded attempt Hash of a sent
// transaction for too low a fee, so the signer (which holds the keys; the broadcaster does not) signs it
// again at the same nonce with higher fees. MinTipCap is the least tip the node said it needs, in wei as a
// decimal string, when it said one.
type TxRefeeRequested struct {
	SentTxID  int64  `json:"sent_tx_id"`
	Hash      string `json:"hash"`
	MinTipCap string `json:"min_tip_cap,omitempty"`
}

// BalanceCheckRequested is the balance-check payload: accountmgr looks at one managed account's balances and
// queues what its band asks for (a top-up, a sweep). Carries no balance: the handler reads them fresh,
// after the transfers it counts, so a stale reading can never look like a new deficit.
type BalanceCheckRequested struct {
	Chain   string `json:"chain"`
	Account string `json:"account"`
}

// BalanceTransferRequested is the balance-transfer payload: a balance_transfers row is ready to be
// signed (a top-up from the main account, or a sweep back to it).
type BalanceTransferRequested struct {
	TransferID string `json:"transfer_id"`
}

// NewID returns a new time-ordered unique id (UUIDv7) for messages and records.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// payload lists the payload types Decode knows; each says whether it names what it is about.
type payload interface {
	WithdrawalRequested | TxSigned | TxBroadcasted | TxRefeeRequested | BalanceCheckRequested | BalanceTransferRequested
	complete() bool
}

func (p WithdrawalRequested) complete() bool   { return p.WithdrawalID != "" }
func (p TxSigned) complete() bool              { return p.SentTxID != 0 }
func (p TxBroadcasted) complete() bool         { return p.SentTxID != 0 }
func (p TxRefeeRequested) complete() bool      { return p.SentTxID != 0 && p.Hash != "" }
func (p BalanceCheckRequested) complete() bool { return p.Chain != "" && p.Account != "" }
func (p BalanceTransferRequested) complete() bool {
	return p.TransferID != ""
}

// Decode parses an envelope of type typ and its payload. A message that does not decode will never
// decode: the error is permanent (INVALID_TRANSACTION, code bad_message), so it goes to the DLQ at once.
func Decode[P payload](body []byte, typ string) (Envelope, P, error) {
	var p P
	env, err := ParseEnvelope(body, typ)
	if err == nil {
		err = json.Unmarshal(env.Payload, &p)
	}
	if err == nil && !p.complete() {
		err = fmt.Errorf("payload %s lacks its reference", env.Payload)
	}
	if err != nil {
		return env, p, txerr.New(txerr.InvalidTransaction, "bad_message", fmt.Errorf("%s message: %w", typ, err))
	}
	return env, p, nil
}
