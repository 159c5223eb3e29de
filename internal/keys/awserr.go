package keys

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/smithy-go"
)

// SafeCause reduces an error from an AWS call to what is safe to log: the service's error code and
// message (they describe the request, never a secret value), context and network errors, and
// otherwise only the error's type. The SDK's own texts are not passed on because a response that
// failed to decode may carry part of a secret or a plaintext data key in its snapshot.
func SafeCause(op string, err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s: %s", op, ae.ErrorCode(), ae.ErrorMessage())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, context.DeadlineExceeded)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, context.Canceled)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("%s: network: %w", op, ne)
	}
	return fmt.Errorf("%s: request failed (%T)", op, errors.Unwrap(err))
}
