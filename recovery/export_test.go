package recovery

import "context"

// UnstickOne runs the stuck-transaction action on sent transaction id of chain name, as a sweep does
// once Decide found it stuck, and says what it did: skipped, resent, bumped or at_cap.
func (s *Service) UnstickOne(ctx context.Context, name string, id int64) (string, error) {
	st, err := s.store.GetSentTx(ctx, id)
	if err != nil {
		return "", err
	}
	out, err := s.unstick(ctx, s.chains[name], storeInFlight(st))
	return [...]string{"skipped", "resent", "bumped", "at_cap"}[out], err
}
