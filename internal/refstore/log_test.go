package refstore

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// makeLog builds a log of entries "<epoch>:<key>".
func makeLog(entries ...entry) *replicaLog {
	l := newReplicaLog()
	for _, e := range entries {
		l.append(e)
	}
	return l
}

func e(epoch int64, key string) entry { return entry{epoch: epoch, key: key, value: []byte(key)} }

func keys(l *replicaLog) []string {
	var out []string
	for _, e := range l.entries {
		out = append(out, e.key)
	}
	return out
}

func TestCatchUp(t *testing.T) {
	leader := []entry{e(1, "a"), e(1, "b"), e(2, "c"), e(2, "d"), e(3, "e")}
	cases := []struct {
		name     string
		follower []entry
		batch    int
		want     []string
		wantDone bool
	}{
		{name: "empty volume copies everything", batch: 10, want: []string{"a", "b", "c", "d", "e"}, wantDone: true},
		{name: "empty volume, one batch", batch: 2, want: []string{"a", "b"}},
		{name: "a prefix copies the rest", follower: leader[:3], batch: 10, want: []string{"a", "b", "c", "d", "e"}, wantDone: true},
		{name: "a prefix, one batch", follower: leader[:3], batch: 1, want: []string{"a", "b", "c", "d"}},
		{name: "in sync already", follower: leader, batch: 10, want: []string{"a", "b", "c", "d", "e"}, wantDone: true},
		{name: "an unacknowledged write of an old leader is dropped",
			follower: []entry{e(1, "a"), e(1, "b"), e(1, "x")}, batch: 10, want: []string{"a", "b", "c", "d", "e"}, wantDone: true},
		{name: "longer than the leader", follower: append(append([]entry{}, leader...), e(3, "y")), batch: 10,
			want: []string{"a", "b", "c", "d", "e"}, wantDone: true},
		{name: "diverged from the start", follower: []entry{e(0, "x"), e(0, "y")}, batch: 1, want: []string{"a"}},
		{name: "batch zero copies one", batch: 0, want: []string{"a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, f := makeLog(leader...), makeLog(tc.follower...)
			done := catchUp(l, f, tc.batch)
			if diff := cmp.Diff(tc.want, keys(f)); diff != "" {
				t.Errorf("follower (-want +got):\n%s", diff)
			}
			if done != tc.wantDone {
				t.Errorf("done = %t, want %t", done, tc.wantDone)
			}
			// The follower's index serves what its log says.
			for i, e := range f.entries {
				if _, off, ok := f.get(e.key); !ok || off != i {
					t.Errorf("get(%q) = %d, %t; want offset %d", e.key, off, ok, i)
				}
			}
			if _, _, ok := f.get("x"); ok {
				t.Errorf("get(x) found a dropped write")
			}
		})
	}
}
