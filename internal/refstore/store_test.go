package refstore

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// members lists the pods of the shard's replicas.
func (f *fixture) members(shard int) []string {
	sh := f.s.shards[shard]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var pods []string
	for _, m := range sortedMembers(sh) {
		pods = append(pods, m.pod)
	}
	return pods
}

func (f *fixture) scale(replicas int32) {
	f.replicas = &replicas
	f.observe()
	f.settle()
}

// A scale-down while another pod is approved to stop: the replicas off
// the placement stay until the placed ones can lose a pod, so the stop
// leaves every shard min-in-sync in-sync replicas.
func TestScaleDownWhileAPodIsApprovedToStop(t *testing.T) {
	f := newFixture(t).start()
	for i := range f.s.shards {
		mustPut(t, f.s, keyOn(f.s, i), "v1")
	}
	f.approve(f.op("kv-0", restart))
	f.scale(2)
	for i := range f.s.shards {
		if diff := cmp.Diff([]string{"kv-0", "kv-1", "kv-2"}, f.members(i)); diff != "" {
			t.Fatalf("shard %d replicas after the scale-down, kv-0 approved to restart (-want +got):\n%s", i, diff)
		}
	}
	f.down("kv-0", "terminating")
	for i := range f.s.shards {
		if got, _ := f.inSync(i); len(got) < 2 {
			t.Fatalf("shard %d: in-sync replicas up with kv-0 stopped = %v, want 2 or more", i, got)
		}
		mustPut(t, f.s, keyOn(f.s, i), "v2")
	}
	// kv-2 (off the placement) is still needed: it may not go while kv-0 is out.
	if d := f.request(f.op("kv-2", remove)); d.Decision != shardmanagerv1.Decision_DECISION_DENIED {
		t.Fatalf("REMOVE of kv-2 while kv-0 restarts = %+v, want denied", d)
	}
	f.up("kv-0")
	f.settle()
	for i := range f.s.shards {
		if diff := cmp.Diff([]string{"kv-0", "kv-1", "kv-2"}, f.members(i)); diff != "" {
			t.Fatalf("shard %d replicas before the restart completed (-want +got):\n%s", i, diff)
		}
	}
	if err := f.s.CompleteOperation("shop/kv/kv-0/RESTART"); err != nil {
		t.Fatal(err)
	}
	f.settle()
	for i := range f.s.shards {
		if diff := cmp.Diff([]string{"kv-0", "kv-1"}, f.members(i)); diff != "" {
			t.Fatalf("shard %d replicas once kv-0 is back (-want +got):\n%s", i, diff)
		}
		if got := mustGet(t, f.s, keyOn(f.s, i)); got != "v2" {
			t.Fatalf("shard %d: Get = %q, want v2", i, got)
		}
	}
}

// A scale-down to fewer pods than min-in-sync retires replicas only down
// to min-in-sync per shard: the shard manager then lets kv-2 go, not kv-1.
func TestScaleDownBelowMinInSync(t *testing.T) {
	f := newFixture(t).start()
	f.scale(1)
	for i := range f.s.shards {
		if diff := cmp.Diff([]string{"kv-0", "kv-1"}, f.members(i)); diff != "" {
			t.Fatalf("shard %d replicas after scaling to 1 (-want +got):\n%s", i, diff)
		}
	}
	if diff := cmp.Diff(approved("kv-2 holds no replica"), f.request(f.op("kv-2", remove))); diff != "" {
		t.Fatalf("REMOVE of kv-2 (-want +got):\n%s", diff)
	}
	f.down("kv-2", "terminating")
	delete(f.pods, "kv-2")
	f.observe()
	f.settle()
	if d := f.request(f.op("kv-1", remove)); d.Decision != shardmanagerv1.Decision_DECISION_DENIED {
		t.Fatalf("REMOVE of kv-1 with one pod placed = %+v, want denied", d)
	}
	for i := range f.s.shards {
		if got, _ := f.inSync(i); len(got) != 2 {
			t.Fatalf("shard %d: in-sync replicas up = %v, want kv-0 and kv-1", i, got)
		}
		mustPut(t, f.s, keyOn(f.s, i), "v")
	}
}
