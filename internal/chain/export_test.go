package chain

// Queued is how many calls wait for the next batch, for tests that need a call queued.
func (q *Coalescer) Queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}
