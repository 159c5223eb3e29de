package admin

import "context"

// The seams between the admin framework (server.go, auth.go, audit.go, approvals.go: login, roles,
// the audit chain, the actions endpoint and two-person approvals) and what operators read and do
// (reads.go, actions.go). The framework calls ActionSpecs; it never knows what an action does.

// ActionSpec is one kind of action.
type ActionSpec struct {
	Name string
	// Role is the least role that may request it (approving needs RoleApprover, and a different person).
	Role Role
	// TwoPerson reports whether this request takes effect only once a different approver approves it.
	TwoPerson func(req ActionRequest) bool
	// Validate refuses a bad request with a *Error naming the field (4xx) before anything is planned.
	Validate func(ctx context.Context, req ActionRequest) error
	// Plan says exactly what Do would do now (transactions, nonces, fees, rows), changing nothing.
	Plan func(ctx context.Context, req ActionRequest) (Plan, error)
	// Do performs the action on behalf of by (the requester, or "requester+approver" for two-person
	// actions). It must be idempotent on req.RequestID: the framework may call it again after a crash.
	Do func(ctx context.Context, req ActionRequest, by string) (map[string]any, error)
}

// Error is an admin API error: {"error":{"code","field","message"}} sent with Status.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }
