package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/policy"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
)

// Listing limits.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
	// MaxExternalIDLen is the longest external_id, in characters.
	MaxExternalIDLen = 128
)

// CreateTimeout bounds a create, from its id to its commit. It must stay well under
// policy.DestinationsOverlap (a test says so).
const CreateTimeout = 20 * time.Second

// ---- rendering ----

// WithdrawalJSON is the withdrawal as the API shows it; absent values are null. The admin API shows the
// same (plus its client), rendered by the same Render.
type WithdrawalJSON struct {
	ID            string     `json:"id"`
	ExternalID    string     `json:"external_id"`
	Chain         string     `json:"chain"`
	Asset         string     `json:"asset"`
	To            string     `json:"to"`
	Amount        *string    `json:"amount"`
	Status        string     `json:"status"`
	Waiting       *string    `json:"waiting"`
	From          *string    `json:"from"`
	Nonce         *uint64    `json:"nonce"`
	TxHash        *string    `json:"tx_hash"`
	BatchID       *string    `json:"batch_id"`
	BlockNumber   *uint64    `json:"block_number"`
	Confirmations *uint64    `json:"confirmations"`
	Error         *ErrorJSON `json:"error"`
	CreatedAt     string     `json:"created_at"`
	UpdatedAt     string     `json:"updated_at"`
}

// ErrorJSON is why a withdrawal failed.
type ErrorJSON struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// timeFormat is RFC 3339 in UTC with the database's microsecond precision, fixed width so that
// timestamps sort as strings.
const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// render turns a stored withdrawal into its JSON. amount is null only if the withdrawal's chain or asset
// has since been removed from the configuration (its decimals are then unknown). confirmations is the
// chain's configured confirmation depth once the withdrawal is CONFIRMED, and null before.
func (s *Server) render(w *store.Withdrawal) *WithdrawalJSON {
	var decimals, confirmations *uint64
	if ch := s.chains[w.Chain]; ch != nil {
		confirmations = &ch.confirmations
		if dec, ok := ch.assets[w.Asset]; ok {
			d := uint64(dec)
			decimals = &d
		}
	}
	return Render(w, decimals, confirmations)
}

// Render is w as the API shows it, given its asset's decimals and its chain's confirmation depth (nil
// when the asset or the chain is no longer configured: amount or confirmations are then null).
func Render(w *store.Withdrawal, decimals, confirmations *uint64) *WithdrawalJSON {
	out := &WithdrawalJSON{
		ID:          w.ID,
		ExternalID:  w.ExternalID,
		Chain:       w.Chain,
		Asset:       w.Asset,
		To:          checksum(w.To),
		Status:      string(w.Status),
		Nonce:       w.Nonce,
		TxHash:      strOrNil(w.TxHash),
		BatchID:     strOrNil(w.BatchID),
		BlockNumber: w.BlockNumber,
		CreatedAt:   w.CreatedAt.UTC().Format(timeFormat),
		UpdatedAt:   w.UpdatedAt.UTC().Format(timeFormat),
	}
	if w.From != "" {
		f := checksum(w.From)
		out.From = &f
	}
	if w.Status == store.Pending {
		out.Waiting = strOrNil(w.Waiting)
	}
	if decimals != nil && w.Amount != nil {
		a := FormatAmount(w.Amount, uint8(*decimals))
		out.Amount = &a
	}
	if confirmations != nil && w.Status == store.Confirmed {
		n := *confirmations
		out.Confirmations = &n
	}
	if w.ErrorType != "" || w.ErrorMessage != "" {
		out.Error = &ErrorJSON{Type: w.ErrorType, Message: w.ErrorMessage}
	}
	return out
}

func checksum(a string) string {
	if common.IsHexAddress(a) {
		return common.HexToAddress(a).Hex()
	}
	return a
}

type chainJSON struct {
	Name          string      `json:"name"`
	ChainID       uint64      `json:"chain_id"`
	Confirmations uint64      `json:"confirmations"`
	Assets        []assetJSON `json:"assets"`
	HotWallets    []string    `json:"hot_wallets"`
}

type assetJSON struct {
	Symbol   string  `json:"symbol"`
	Decimals uint8   `json:"decimals"`
	Address  *string `json:"address"` // null for the native coin
}

func buildChains(chains []config.Chain) (map[string]*chainInfo, []byte) {
	infos := make(map[string]*chainInfo, len(chains))
	list := make([]chainJSON, 0, len(chains))
	for _, ch := range chains {
		info := &chainInfo{name: ch.Name, confirmations: ch.Confirmations, assets: make(map[string]uint8, len(ch.Assets)),
			maxWithdrawal: map[string]*big.Int{}}
		cj := chainJSON{Name: ch.Name, ChainID: ch.ChainID, Confirmations: ch.Confirmations,
			Assets: make([]assetJSON, 0, len(ch.Assets)), HotWallets: make([]string, 0, len(ch.HotWallets))}
		for _, a := range ch.Assets {
			info.assets[a.Symbol] = a.Decimals
			if a.MaxWithdrawal.IsSet() && a.MaxWithdrawal.Int().Sign() > 0 {
				info.maxWithdrawal[a.Symbol] = a.MaxWithdrawal.Int()
			}
			aj := assetJSON{Symbol: a.Symbol, Decimals: a.Decimals}
			if !a.Native() {
				addr := a.Address.Hex() // EIP-55 checksummed
				aj.Address = &addr
			}
			cj.Assets = append(cj.Assets, aj)
		}
		for _, w := range ch.HotWallets {
			cj.HotWallets = append(cj.HotWallets, w.Hex())
		}
		infos[ch.Name] = info
		list = append(list, cj)
	}
	b, err := json.Marshal(map[string][]chainJSON{"chains": list})
	if err != nil {
		panic(err) // only strings and numbers: cannot fail
	}
	return infos, b
}

// ---- create ----

// createRequest is the POST /v1/withdrawals body; a nil field was absent or null.
type createRequest struct {
	ExternalID, Chain, Asset, To, Amount *string
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads at most maxBody bytes of the request body (413 above that).
func readBody(c echo.Context, buf *bytes.Buffer) error {
	r := c.Request()
	if r.ContentLength > maxBody {
		return newErr(CodeBodyTooLarge, "", "request body is larger than "+strconv.Itoa(maxBody)+" bytes")
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxBody+1)); err != nil {
		return newErr(CodeInvalidJSON, "", "could not read the request body")
	}
	if buf.Len() > maxBody {
		return newErr(CodeBodyTooLarge, "", "request body is larger than "+strconv.Itoa(maxBody)+" bytes")
	}
	return nil
}

// parseCreate decodes the body strictly: one JSON object, exactly-named fields (no unknown, duplicate or
// differently-cased keys), string (or null) values, valid UTF-8, nothing after the object.
func parseCreate(body []byte) (createRequest, error) {
	var req createRequest
	bad := func(field, msg string) (createRequest, error) {
		return req, newErr(CodeInvalidJSON, field, msg)
	}
	if !utf8.Valid(body) {
		return bad("", "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad("", "request body must be a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad("", "request body is not valid JSON: "+err.Error())
		}
		key, _ := tok.(string)
		var dst **string
		switch key {
		case "external_id":
			dst = &req.ExternalID
		case "chain":
			dst = &req.Chain
		case "asset":
			dst = &req.Asset
		case "to":
			dst = &req.To
		case "amount":
			dst = &req.Amount
		default:
			f := key
			if len(f) > 64 {
				f = strings.ToValidUTF8(f[:64], "")
			}
			return bad(f, fmt.Sprintf("unknown field %q; fields are external_id, chain, asset, to, amount", f))
		}
		if *dst != nil {
			return bad(key, "field "+key+" appears twice")
		}
		val, err := dec.Token()
		if err != nil {
			return bad(key, "request body is not valid JSON: "+err.Error())
		}
		switch v := val.(type) {
		case string:
			*dst = &v
		case nil:
			// null: treated as absent
		default:
			return bad(key, key+" must be a string")
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return bad("", "request body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("", "unexpected data after the JSON object")
	}
	return req, nil
}

// validExternalID checks an external id: 1–128 characters, no control or format characters.
func validExternalID(field, s string) error {
	if s == "" {
		return newErr(CodeRequired, field, field+" is required")
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxExternalIDLen {
		return newErr(CodeInvalidExternalID, field, field+" must be at most "+strconv.Itoa(MaxExternalIDLen)+" characters")
	}
	for _, r := range s {
		if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) {
			return newErr(CodeInvalidExternalID, field, field+" must not contain control or format characters")
		}
	}
	return nil
}

// validated is a create request that passed validation, normalised.
type validated struct {
	externalID, chain, asset string
	to                       common.Address
	amount                   *big.Int
	hash                     []byte
}

// validate checks the fields in order (external_id, chain, asset, to, amount) and reports the first
// problem. Empty strings count as absent.
func (s *Server) validate(req createRequest) (*validated, error) {
	get := func(p *string, field string) (string, error) {
		if p == nil || *p == "" {
			return "", newErr(CodeRequired, field, field+" is required")
		}
		return *p, nil
	}
	var v validated
	var err error
	if v.externalID, err = get(req.ExternalID, "external_id"); err != nil {
		return nil, err
	}
	if err := validExternalID("external_id", v.externalID); err != nil {
		return nil, err
	}
	if v.chain, err = get(req.Chain, "chain"); err != nil {
		return nil, err
	}
	ch := s.chains[v.chain]
	if ch == nil {
		return nil, newErr(CodeUnknownChain, "chain", "unknown chain; GET /v1/chains lists them")
	}
	if v.asset, err = get(req.Asset, "asset"); err != nil {
		return nil, err
	}
	dec, ok := ch.assets[v.asset]
	if !ok {
		return nil, newErr(CodeUnknownAsset, "asset", "chain "+ch.name+" has no such asset; GET /v1/chains lists them")
	}
	to, err := get(req.To, "to")
	if err != nil {
		return nil, err
	}
	if v.to, err = ValidateAddress("to", to); err != nil {
		return nil, err
	}
	amount, err := get(req.Amount, "amount")
	if err != nil {
		return nil, err
	}
	if v.amount, err = ParseAmount(amount, dec); err != nil {
		return nil, err
	}
	if max := ch.maxWithdrawal[v.asset]; max != nil && v.amount.Cmp(max) > 0 {
		// No hot wallet will ever be asked for more: refused now rather than accepted to fail later.
		return nil, newErr(CodeAmountTooLarge, "amount", "amount is above the "+v.asset+" maximum per withdrawal on "+ch.name+
			", "+FormatAmount(max, dec))
	}
	v.hash = requestHash(v.chain, v.asset, v.to, v.amount)
	return &v, nil
}

// requestHash identifies a request's meaning: chain, asset, checksummed recipient and base-unit amount
// (so "12.5" and "12.50", or a lower-case and a checksummed address, are the same request).
func requestHash(chain, asset string, to common.Address, amount *big.Int) []byte {
	h := sha256.New()
	h.Write([]byte("sluice.withdrawal.v1\x00"))
	h.Write([]byte(chain))
	h.Write([]byte{0})
	h.Write([]byte(asset))
	h.Write([]byte{0})
	h.Write([]byte(to.Hex()))
	h.Write([]byte{0})
	h.Write([]byte(amount.String()))
	return h.Sum(nil)
}

func (s *Server) createWithdrawal(c echo.Context) error {
	rs := state(c)
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	err := readBody(c, buf)
	var req createRequest
	if err == nil {
		req, err = parseCreate(buf.Bytes())
	}
	if buf.Cap() <= maxBody+bytes.MinRead*2 {
		bufPool.Put(buf)
	}
	if err != nil {
		return err
	}
	v, err := s.validate(req)
	if err != nil {
		return err
	}

	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("withdrawal id: %w", err)
	}
	msgID, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("message id: %w", err)
	}
	// Bounded, so that a create commits within CreateTimeout of its id's time or not at all: the
	// destination index of every other instance counts on it (policy.Destinations).
	ctx, cancel := context.WithTimeout(c.Request().Context(), CreateTimeout)
	defer cancel()
	env, err := queue.NewEnvelope(ctx, queue.TypeWithdrawalRequested, msgID.String(), rs.cid, queue.WithdrawalRequested{WithdrawalID: id.String()})
	if err != nil {
		return err
	}
	w := &store.Withdrawal{
		ID:            id.String(),
		ClientID:      rs.client.ID,
		ExternalID:    v.externalID,
		RequestHash:   v.hash,
		Chain:         v.chain,
		Asset:         v.asset,
		To:            v.to.Hex(),
		Amount:        v.amount,
		CorrelationID: rs.cid,
		Traceparent:   queue.InjectTrace(ctx),
	}
	var admit func(tx *sql.Tx) (store.Admission, error)
	if s.pol != nil {
		pr := policy.Request{WithdrawalID: w.ID, ClientID: rs.client.ID, Chain: v.chain, Asset: v.asset, To: v.to, Amount: v.amount}
		hold, err := s.pol.Precheck(ctx, pr)
		if err != nil {
			// A replay of an accepted withdrawal is answered as one even if the recipient checks changed.
			if got, gerr := s.st.WithdrawalByExternalID(ctx, rs.client.ID, v.externalID); gerr == nil {
				return s.replayed(c, rs, got, v)
			}
			return breachErr(err)
		}
		admit = func(tx *sql.Tx) (store.Admission, error) { return s.pol.Admit(ctx, tx, pr, hold) }
	}
	got, created, err := s.st.CreateWithdrawalChecked(ctx, w, admit, func(tx *sql.Tx, st store.Status) error {
		if st != store.Pending {
			return nil // a held withdrawal's message is sent when it is approved
		}
		return s.q.SendTx(ctx, tx, queue.TxRequest, env, queue.SendOptions{})
	})
	if err != nil {
		return breachErr(err)
	}
	log := rs.log.With("withdrawal_id", got.ID, "external_id", got.ExternalID)
	if created {
		s.met.Created(got.Chain, got.Asset)
		log.Info("withdrawal accepted", "status", got.Status, "chain", got.Chain, "asset", got.Asset, "to", got.To, "amount_base_units", got.Amount.String())
		c.Response().Header().Set(echo.HeaderLocation, "/v1/withdrawals/"+got.ID)
		return c.JSON(http.StatusCreated, s.render(got))
	}
	return s.replayed(c, rs, got, v)
}

// replayed answers a create whose external_id exists: 200 with it when the request is the same, 409
// when it differs.
func (s *Server) replayed(c echo.Context, rs *reqState, got *store.Withdrawal, v *validated) error {
	log := rs.log.With("withdrawal_id", got.ID, "external_id", got.ExternalID)
	if !bytes.Equal(got.RequestHash, v.hash) {
		s.met.Replay("conflict")
		log.Info("external_id reused with a different request")
		return newErr(CodeIdempotencyConflict, "external_id",
			"external_id was already used for withdrawal "+got.ID+" with a different chain, asset, to or amount")
	}
	s.met.Replay("same")
	log.Info("withdrawal replayed")
	return c.JSON(http.StatusOK, s.render(got))
}

// ---- read ----

// loadOwned loads the :id withdrawal if it belongs to the caller; anything else is 404, so that ids of
// other clients' withdrawals cannot be probed.
func (s *Server) loadOwned(c echo.Context) (*store.Withdrawal, error) {
	id := c.Param("id")
	if u, err := uuid.Parse(id); err != nil || len(id) != 36 || u.String() != id {
		return nil, errNotFound
	}
	w, err := s.st.GetWithdrawal(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	if w.ClientID != state(c).client.ID {
		return nil, errNotFound
	}
	return w, nil
}

func (s *Server) getWithdrawal(c echo.Context) error {
	w, err := s.loadOwned(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.render(w))
}

type listJSON struct {
	Withdrawals []*WithdrawalJSON `json:"withdrawals"`
	NextCursor  *string           `json:"next_cursor"`
}

// listWithdrawals serves ?external_id= (0 or 1 result) and ?status=&chain=&asset=&created_from=
// &created_to=&limit=&cursor= (newest first; next_cursor is the id to pass as cursor for the next page,
// null on the last page; the filters must be the same on every page).
func (s *Server) listWithdrawals(c echo.Context) error {
	q := c.QueryParams()
	rs := state(c)
	ctx := c.Request().Context()
	f := store.ListFilter{ClientID: rs.client.ID, Limit: DefaultListLimit}
	if q.Has("status") {
		st := strings.ToUpper(q.Get("status"))
		if !store.ValidStatus(st) {
			return newErr(CodeInvalidParameter, "status", "status must be one of AWAITING_APPROVAL, PENDING, SIGNING, SIGNED, BROADCASTED, CONFIRMED, FAILED, CANCELED")
		}
		f.Status = store.Status(st)
	}
	if q.Has("chain") {
		if s.chains[q.Get("chain")] == nil {
			return newErr(CodeInvalidParameter, "chain", "unknown chain; GET /v1/chains lists them")
		}
		f.Chain = q.Get("chain")
	}
	if q.Has("asset") {
		a := q.Get("asset")
		if a == "" || len(a) > 32 {
			return newErr(CodeInvalidParameter, "asset", "asset must be an asset symbol")
		}
		f.Asset = a
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"created_from", &f.CreatedFrom}, {"created_to", &f.CreatedTo}} {
		if !q.Has(p.name) {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, q.Get(p.name))
		if err != nil {
			return newErr(CodeInvalidParameter, p.name, p.name+" must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
		}
		*p.dst = t
	}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > MaxListLimit {
			return newErr(CodeInvalidParameter, "limit", "limit must be an integer from 1 to "+strconv.Itoa(MaxListLimit))
		}
		f.Limit = n
	}
	if q.Has("cursor") {
		u, err := uuid.Parse(q.Get("cursor"))
		if err != nil || len(q.Get("cursor")) != 36 {
			return newErr(CodeInvalidParameter, "cursor", "cursor must be the next_cursor of a previous page")
		}
		f.Cursor = u.String()
	}
	out := listJSON{Withdrawals: []*WithdrawalJSON{}}
	if q.Has("external_id") {
		ext := q.Get("external_id")
		if err := validExternalID("external_id", ext); err != nil {
			return newErr(CodeInvalidParameter, "external_id", err.(*ValidationError).Message)
		}
		w, err := s.st.WithdrawalByExternalID(ctx, rs.client.ID, ext)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if w != nil && (f.Status == "" || w.Status == f.Status) && (f.Chain == "" || w.Chain == f.Chain) && (f.Asset == "" || w.Asset == f.Asset) &&
			(f.CreatedFrom.IsZero() || !w.CreatedAt.Before(f.CreatedFrom)) && (f.CreatedTo.IsZero() || w.CreatedAt.Before(f.CreatedTo)) {
			out.Withdrawals = append(out.Withdrawals, s.render(w))
		}
		return c.JSON(http.StatusOK, out)
	}
	want := f.Limit
	f.Limit++ // one more than asked, to know whether there is a next page
	ws, err := s.st.ListWithdrawals(ctx, f)
	if err != nil {
		return err
	}
	if len(ws) > want {
		ws = ws[:want]
		next := ws[want-1].ID
		out.NextCursor = &next
	}
	for _, w := range ws {
		out.Withdrawals = append(out.Withdrawals, s.render(w))
	}
	return c.JSON(http.StatusOK, out)
}

// ---- cancel ----

// cancelWithdrawal cancels a withdrawal not signed yet at once (200), or asks recovery to replace a
// signed one's transaction at the same nonce (202: alone, by a zero-value self-transfer; inside a batch,
// by the batch without this payment; whichever mines decides). A cancel racing the signer (SIGNING) is
// decided by the row lock. The rules are the store's (store.RequestCancel), shared with the admin API.
func (s *Server) cancelWithdrawal(c echo.Context) error {
	w, err := s.loadOwned(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	res, err := s.st.RequestCancel(ctx, w, "canceled by client", store.ActorAPI)
	if err != nil {
		return refused(err)
	}
	if !res.Canceled {
		state(c).log.Info("cancel requested", "withdrawal_id", w.ID, "external_id", w.ExternalID, "action_id", res.Action.ID,
			"kind", res.Action.Kind, "tx_hash", res.SentTx.Hash, "batch_id", w.BatchID, "new", res.Created)
		if w, err = s.st.GetWithdrawal(ctx, w.ID); err != nil { // it may have been SIGNING when read
			return err
		}
		return c.JSON(http.StatusAccepted, cancelJSON{WithdrawalJSON: s.render(w), Cancel: store.ReasonCancelRequested})
	}
	if w, err = s.st.GetWithdrawal(ctx, w.ID); err != nil {
		return err
	}
	s.met.Canceled()
	state(c).log.Info("withdrawal canceled", "withdrawal_id", w.ID, "external_id", w.ExternalID)
	return c.JSON(http.StatusOK, s.render(w))
}

// ---- history ----

type historyJSON struct {
	WithdrawalID string             `json:"withdrawal_id"`
	History      []historyEntryJSON `json:"history"`
}

type historyEntryJSON struct {
	From      *string `json:"from"` // null for the first entry (creation)
	To        string  `json:"to"`
	Reason    string  `json:"reason"`
	Actor     string  `json:"actor"`
	CreatedAt string  `json:"created_at"`
}

func (s *Server) withdrawalHistory(c echo.Context) error {
	w, err := s.loadOwned(c)
	if err != nil {
		return err
	}
	hs, err := s.st.History(c.Request().Context(), w.ID)
	if err != nil {
		return err
	}
	out := historyJSON{WithdrawalID: w.ID, History: make([]historyEntryJSON, 0, len(hs))}
	for _, h := range hs {
		out.History = append(out.History, historyEntryJSON{From: strOrNil(string(h.From)), To: string(h.To),
			Reason: h.Reason, Actor: string(h.Actor), CreatedAt: h.CreatedAt.UTC().Format(timeFormat)})
	}
	return c.JSON(http.StatusOK, out)
}
