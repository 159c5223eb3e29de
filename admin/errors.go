package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// Error codes of the admin API (the "code" of {"error":{...}}). openapi.json lists them.
const (
	CodeInvalidJSON       = "invalid_json"        // 400: the body is not the documented JSON shape
	CodeInvalidParameter  = "invalid_parameter"   // 400: a query or path parameter (field names it)
	CodeUnauthorized      = "unauthorized"        // 401
	CodeForbidden         = "forbidden"           // 403: the message names the role needed
	CodeCSRF              = "csrf"                // 403: a cookie session's unsafe request without the CSRF header
	CodeSelfApproval      = "self_approval"       // 403
	CodeNotFound          = "not_found"           // 404
	CodeMethodNotAllowed  = "method_not_allowed"  // 405
	CodeConflict          = "conflict"            // 409: the target's state forbids it (the message says why)
	CodeRequestIDConflict = "request_id_conflict" // 409: a request id seen with another body
	CodeInProgress        = "in_progress"         // 409: the same request id is being performed right now
	CodeExpired           = "expired"             // 409: an approval request past its expiry
	CodeNotPending        = "not_pending"         // 409: an approval already decided
	CodeOperatorExists    = "operator_exists"     // 409
	CodeBodyTooLarge      = "body_too_large"      // 413
	CodeRequired          = "required"            // 422
	CodeInvalid           = "invalid"             // 422: a field's value is refused (the message says why)
	CodeUnknownAction     = "unknown_action"      // 422
	CodeWeakPassword      = "weak_password"       // 422
	CodeLocked            = "locked"              // 429: too many failed logins of the account (Retry-After)
	CodeRateLimited       = "rate_limited"        // 429: too many logins from the address (Retry-After)
	CodeInternal          = "internal"            // 500
)

// errBody is the JSON of every error response.
type errBody struct {
	Error *Error `json:"error"`
}

// newError is an *Error sent with status.
func newError(status int, code, field, msg string) *Error {
	return &Error{Status: status, Code: code, Field: field, Message: msg}
}

func badParam(field, msg string) *Error {
	return newError(http.StatusBadRequest, CodeInvalidParameter, field, msg)
}

func unprocessable(code, field, msg string) *Error {
	return newError(http.StatusUnprocessableEntity, code, field, msg)
}

func notFound(msg string) *Error { return newError(http.StatusNotFound, CodeNotFound, "", msg) }

func conflict(code, msg string) *Error { return newError(http.StatusConflict, code, "", msg) }

var errUnauthorized = newError(http.StatusUnauthorized, CodeUnauthorized, "", "missing, invalid or expired credentials")

// retryAfter is an *Error whose response carries Retry-After.
type retryAfter struct {
	err     *Error
	seconds int
}

func (r *retryAfter) Error() string { return r.err.Message }
func (r *retryAfter) Unwrap() error { return r.err }

// handleError writes err as the JSON error response; anything that is not an *Error or an echo HTTP
// error is an internal error, logged with the request's correlation id and not shown to the client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *Error
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &mbe):
		ae = newError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "", "request body is larger than "+strconv.Itoa(maxBody)+" bytes")
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			ae = notFound("no such route")
		case http.StatusMethodNotAllowed:
			ae = newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", "method not allowed on this route")
		case http.StatusRequestEntityTooLarge:
			ae = newError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "", "request body too large")
		default:
			if he.Code >= 500 {
				state(c).log.Error("admin request failed", "err", err)
				ae = newError(http.StatusInternalServerError, CodeInternal, "", "internal error")
			} else {
				ae = newError(he.Code, CodeInvalidParameter, "", http.StatusText(he.Code))
			}
		}
	default:
		state(c).log.Error("admin request failed", "err", err)
		ae = newError(http.StatusInternalServerError, CodeInternal, "", "internal error; quote the X-Correlation-ID response header when reporting it")
	}
	var ra *retryAfter
	if errors.As(err, &ra) {
		c.Response().Header().Set("Retry-After", strconv.Itoa(max(ra.seconds, 1)))
	}
	status := ae.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, errBody{Error: ae})
}

// bind decodes the JSON body into v, refusing unknown fields and trailing data (400 invalid_json).
func bind(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return newError(http.StatusBadRequest, CodeInvalidJSON, "", "request body is empty; a JSON object is expected")
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return newError(http.StatusBadRequest, CodeInvalidJSON, te.Field, fmt.Sprintf("%s must be a JSON %s", te.Field, te.Type))
		}
		return newError(http.StatusBadRequest, CodeInvalidJSON, "", "request body is not valid JSON: "+err.Error())
	}
	if dec.More() {
		return newError(http.StatusBadRequest, CodeInvalidJSON, "", "request body has data after the JSON object")
	}
	return nil
}
