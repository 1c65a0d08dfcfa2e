package broker

// QueuedWrites is how many writes wait for their turn, for tests that make
// writes share a transaction.
func (b *Broker) QueuedWrites() int {
	b.queueMu.Lock()
	defer b.queueMu.Unlock()
	return len(b.queue)
}

// GroupedWrites is how many writes shared a transaction with others.
func (b *Broker) GroupedWrites() int64 { return b.grouped.Load() }
