package refstore

// entry is one write in a shard's log. Its offset is its index. epoch is
// the leader epoch that wrote it: two logs that hold an entry of the same
// epoch at the same offset agree on every entry before it, as a shard has
// one leader per epoch and a leader only appends.
type entry struct {
	epoch int64
	key   string
	value []byte
}

// replicaLog is one replica's copy of a shard: its log and the values the
// log sets. Guarded by the shard's lock.
type replicaLog struct {
	entries []entry
	// index maps a key to the offset of the last entry that set it.
	index map[string]int
}

func newReplicaLog() *replicaLog {
	return &replicaLog{index: map[string]int{}}
}

func (l *replicaLog) len() int { return len(l.entries) }

func (l *replicaLog) append(e entry) {
	l.entries = append(l.entries, e)
	l.index[e.key] = len(l.entries) - 1
}

// truncate drops the entries from offset n on.
func (l *replicaLog) truncate(n int) {
	if n >= len(l.entries) {
		return
	}
	l.entries = l.entries[:n]
	l.index = make(map[string]int, len(l.index))
	for i, e := range l.entries {
		l.index[e.key] = i
	}
}

// get returns the entry that last set key, and its offset.
func (l *replicaLog) get(key string) (entry, int, bool) {
	i, ok := l.index[key]
	if !ok {
		return entry{}, 0, false
	}
	return l.entries[i], i, true
}

// catchUp copies up to batch entries of the leader's log into the
// follower's, first dropping whatever the follower holds that the leader
// does not (entries past the leader's end, or of another epoch: writes of
// a former leader that were never acknowledged). It reports whether the
// follower now holds exactly the leader's log.
func catchUp(leader, follower *replicaLog, batch int) bool {
	n := min(follower.len(), leader.len())
	for n > 0 && follower.entries[n-1].epoch != leader.entries[n-1].epoch {
		n--
	}
	follower.truncate(n)
	end := min(leader.len(), n+max(batch, 1))
	for _, e := range leader.entries[n:end] {
		follower.append(e)
	}
	return follower.len() == leader.len()
}

// volume is one PersistentVolumeClaim's data: a log per shard. A replica
// whose pod comes back on the same claim finds its logs; a pod on a new
// claim starts on an empty volume.
type volume struct {
	key  string
	logs []*replicaLog // by shard; each guarded by its shard's lock
}

func newVolume(key string, shards int) *volume {
	v := &volume{key: key, logs: make([]*replicaLog, shards)}
	for i := range v.logs {
		v.logs[i] = newReplicaLog()
	}
	return v
}
