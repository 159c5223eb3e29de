package queue

import "github.com/google/uuid"

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

// NewID returns a new time-ordered unique id (UUIDv7) for messages and records.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }
