package refstore

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func mustPut(t *testing.T, s *Store, key, value string) PutResult {
	t.Helper()
	r, err := s.Put(key, []byte(value))
	if err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
	return r
}

func mustGet(t *testing.T, s *Store, key string) string {
	t.Helper()
	r, err := s.Get(key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	if !r.Found {
		t.Fatalf("Get(%s): not found", key)
	}
	return string(r.Value)
}

// keyOn returns a key of the shard.
func keyOn(s *Store, shard int) string {
	for i := 0; ; i++ {
		if k := fmt.Sprintf("key-%d", i); s.ShardOf(k) == shard {
			return k
		}
	}
}

func TestPutNeedsMinInSync(t *testing.T) {
	f := newFixture(t).start()
	key := keyOn(f.s, 1) // shard 1: kv-1 leads, followers kv-2, kv-0
	if r := mustPut(t, f.s, key, "v1"); r.Replicas != 3 || r.Shard != 1 || r.Offset != 0 {
		t.Fatalf("Put = %+v, want shard 1, offset 0 on 3 replicas", r)
	}
	f.down("kv-1", "terminating") // the leader goes: a follower takes over, no write lost
	if got := mustGet(t, f.s, key); got != "v1" {
		t.Fatalf("Get after the leader went = %q, want v1", got)
	}
	if r := mustPut(t, f.s, key, "v2"); r.Replicas != 2 || r.Offset != 1 {
		t.Fatalf("Put = %+v, want offset 1 on 2 replicas", r)
	}
	f.down("kv-2", "terminating")
	_, err := f.s.Put(key, []byte("v3"))
	if status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "shard 1 has 1 in-sync replica up (kv-0), 2 needed" {
		t.Fatalf("Put with one in-sync replica = %v, want Unavailable", err)
	}
	if got := mustGet(t, f.s, key); got != "v2" {
		t.Fatalf("Get = %q, want v2 (a refused write is not visible)", got)
	}
	f.down("kv-0", "terminating") // the last in-sync replica: the shard waits for it
	if _, err := f.s.Get(key); status.Code(err) != codes.Unavailable {
		t.Fatalf("Get with no replica up = %v, want Unavailable", err)
	}
	f.up("kv-1")
	f.up("kv-2")
	f.settle()
	if pods, leader := f.inSync(1); len(pods) != 0 || leader != "" {
		t.Fatalf("shard 1: in sync %v, leader %q; want none before kv-0, its last in-sync replica, is back", pods, leader)
	}
	f.up("kv-0")
	f.settle()
	if pods, _ := f.inSync(1); len(pods) != 3 {
		t.Fatalf("shard 1: in sync %v, want all three", pods)
	}
	if got := mustGet(t, f.s, key); got != "v2" {
		t.Fatalf("Get = %q, want v2", got)
	}
	for _, bad := range []string{"", string(make([]byte, maxKeyBytes+1))} {
		if _, err := f.s.Put(bad, nil); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Put of a %d-byte key = %v, want InvalidArgument", len(bad), err)
		}
	}
	if _, err := f.s.Put("k", make([]byte, maxValueBytes+1)); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Put of a large value = %v, want InvalidArgument", err)
	}
	if r, err := f.s.Get("never-written"); err != nil || r.Found {
		t.Errorf("Get of a key never written = %+v, %v; want not found", r, err)
	}
}

// TestCatchUpAfterReturn: a replica that comes back on its claim copies
// only what it missed; on a new claim it copies the whole shard; either
// way it rejoins the in-sync set only once it holds every write.
func TestCatchUpAfterReturn(t *testing.T) {
	cases := []struct {
		name     string
		newClaim bool
		// wantSteps: catch-up batches (of 2 entries) until in sync.
		wantSteps int
	}{
		{name: "same claim", wantSteps: 2},
		{name: "new claim", newClaim: true, wantSteps: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.CatchUpBatch = 2; o.Shards = 1 }).start()
			for i := range 4 {
				mustPut(t, f.s, fmt.Sprintf("before-%d", i), "x")
			}
			f.down("kv-2", "terminating")
			for i := range 3 {
				mustPut(t, f.s, fmt.Sprintf("during-%d", i), "y")
			}
			if tc.newClaim {
				f.upOnNewClaim("kv-2")
			} else {
				f.up("kv-2")
			}
			steps := 0
			for {
				pods, _ := f.inSync(0)
				if len(pods) == 3 {
					break
				}
				if diff := cmp.Diff([]string{"kv-0", "kv-1"}, pods); diff != "" {
					t.Fatalf("in sync while catching up (-want +got):\n%s", diff)
				}
				if steps > 10 {
					t.Fatal("kv-2 does not catch up")
				}
				f.catchUpOnce("kv-2")
				steps++
				// Writes go on while it catches up; it must get them too.
				if steps == 1 {
					mustPut(t, f.s, "while-catching-up", "z")
				}
			}
			if steps != tc.wantSteps {
				t.Errorf("caught up in %d steps, want %d", steps, tc.wantSteps)
			}
			sh := f.s.shards[0]
			want := keys(sh.members["kv-0"].log(0))
			if diff := cmp.Diff(want, keys(sh.members["kv-2"].log(0))); diff != "" {
				t.Fatalf("kv-2's log (-leader +kv-2):\n%s", diff)
			}
			// kv-2 now holds every write: the others may go.
			f.down("kv-0", "terminating")
			f.down("kv-1", "terminating")
			f.up("kv-1")
			f.settle()
			for _, k := range want {
				mustGet(t, f.s, k)
			}
		})
	}
}
