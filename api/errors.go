package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// Error codes, the "code" of {"error":{"code","field","message"}}. The HTTP status is fixed per code
// (see codeStatus); openapi.json lists the same table.
//
// The rule for 400 versus 422: 400 when the request cannot be read as the documented shape (the body is
// not a JSON object of string fields, a query parameter is malformed), 422 when it can but a field's
// value is not acceptable.
const (
	CodeInvalidJSON         = "invalid_json"          // 400
	CodeInvalidParameter    = "invalid_parameter"     // 400: a query parameter (field names it)
	CodeUnauthorized        = "unauthorized"          // 401
	CodeForbidden           = "forbidden"             // 403: the key lacks the route's scope
	CodeNotFound            = "not_found"             // 404
	CodeMethodNotAllowed    = "method_not_allowed"    // 405
	CodeIdempotencyConflict = "idempotency_conflict"  // 409: external_id seen with a different body
	CodeNotCancelable       = "not_cancelable"        // 409: cancel of a withdrawal that is not PENDING
	CodeNotAwaitingApproval = "not_awaiting_approval" // 409: approve/reject of a withdrawal not held
	CodeAlreadyApproved     = "already_approved"      // 409: the same approver approving twice
	CodeNotRedeliverable    = "not_redeliverable"     // 409: redeliver of a webhook delivery that is pending
	CodeBodyTooLarge        = "body_too_large"        // 413
	CodeRequired            = "required"              // 422
	CodeInvalidExternalID   = "invalid_external_id"   // 422
	CodeUnknownChain        = "unknown_chain"         // 422
	CodeUnknownAsset        = "unknown_asset"         // 422
	CodeInvalidAddress      = "invalid_address"       // 422
	CodeInvalidChecksum     = "invalid_checksum"      // 422
	CodeInvalidAmount       = "invalid_amount"        // 422
	CodeAmountNotPositive   = "amount_not_positive"   // 422
	CodeTooManyDecimals     = "too_many_decimals"     // 422
	CodeAmountTooLarge      = "amount_too_large"      // 422
	CodeLimitExceeded       = "limit_exceeded"        // 422: a policy limit or list (the message names the rule)
	CodeInvalidURL          = "invalid_url"           // 422: a webhook URL that is malformed or resolves to an internal address
	CodeInvalidTime         = "invalid_time"          // 422: a body field that must be an RFC 3339 time
	CodeRecipientRefused    = "recipient_refused"     // 422: a recipient check (the message names the rule)
	CodeRateLimited         = "rate_limited"          // 429
	CodeInternal            = "internal"              // 500
)

// codeStatus is the status each code is sent with.
var codeStatus = map[string]int{
	CodeInvalidJSON:         http.StatusBadRequest,
	CodeInvalidParameter:    http.StatusBadRequest,
	CodeUnauthorized:        http.StatusUnauthorized,
	CodeForbidden:           http.StatusForbidden,
	CodeNotFound:            http.StatusNotFound,
	CodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	CodeIdempotencyConflict: http.StatusConflict,
	CodeNotCancelable:       http.StatusConflict,
	CodeNotAwaitingApproval: http.StatusConflict,
	CodeAlreadyApproved:     http.StatusConflict,
	CodeNotRedeliverable:    http.StatusConflict,
	CodeBodyTooLarge:        http.StatusRequestEntityTooLarge,
	CodeTerminal:            http.StatusConflict,
	CodeCancelInBatch:       http.StatusConflict,
	CodeNotSigned:           http.StatusUnprocessableEntity,
	CodeRequired:            http.StatusUnprocessableEntity,
	CodeInvalidExternalID:   http.StatusUnprocessableEntity,
	CodeUnknownChain:        http.StatusUnprocessableEntity,
	CodeUnknownAsset:        http.StatusUnprocessableEntity,
	CodeInvalidAddress:      http.StatusUnprocessableEntity,
	CodeInvalidChecksum:     http.StatusUnprocessableEntity,
	CodeInvalidAmount:       http.StatusUnprocessableEntity,
	CodeAmountNotPositive:   http.StatusUnprocessableEntity,
	CodeTooManyDecimals:     http.StatusUnprocessableEntity,
	CodeAmountTooLarge:      http.StatusUnprocessableEntity,
	CodeLimitExceeded:       http.StatusUnprocessableEntity,
	CodeInvalidURL:          http.StatusUnprocessableEntity,
	CodeInvalidTime:         http.StatusUnprocessableEntity,
	CodeRecipientRefused:    http.StatusUnprocessableEntity,
	CodeRateLimited:         http.StatusTooManyRequests,
	CodeInternal:            http.StatusInternalServerError,
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string  `json:"code"`
	Field   *string `json:"field"` // null when the error is not about one field
	Message string  `json:"message"`
}

func newErr(code, field, msg string) *ValidationError {
	return &ValidationError{Code: code, Field: field, Message: msg}
}

var errNotFound = newErr(CodeNotFound, "", "withdrawal not found")

// handleError writes err as the JSON error response; anything that is not a *ValidationError or an echo
// HTTP error is an internal error, logged with the request's correlation id and not shown to the client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ve *ValidationError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ve):
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			ve = newErr(CodeNotFound, "", "no such route")
		case http.StatusMethodNotAllowed:
			ve = newErr(CodeMethodNotAllowed, "", "method not allowed on this route")
		case http.StatusRequestEntityTooLarge:
			ve = newErr(CodeBodyTooLarge, "", "request body is larger than "+strconv.Itoa(maxBody)+" bytes")
		case http.StatusUnauthorized:
			ve = newErr(CodeUnauthorized, "", "missing or invalid API key")
		default:
			if he.Code >= 500 {
				reqLog(c, s.log).Error("request failed", "err", err)
				ve = newErr(CodeInternal, "", "internal error")
			} else {
				ve = newErr(CodeInvalidParameter, "", http.StatusText(he.Code))
			}
		}
	default:
		reqLog(c, s.log).Error("request failed", "err", err)
		ve = newErr(CodeInternal, "", "internal error; quote the X-Correlation-ID response header when reporting it")
	}
	status, ok := codeStatus[ve.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if ve.Code == CodeRateLimited {
		c.Response().Header().Set("Retry-After", "1")
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	d := errorDetail{Code: ve.Code, Message: ve.Message}
	if ve.Field != "" {
		d.Field = &ve.Field
	}
	_ = c.JSON(status, errorBody{Error: d})
}
