package statefulapp

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// TestAnswerBoundsTheShardManager: what a shard manager answers cannot make
// Strata stop asking for longer than its longest backoff, nor grow the
// operation record (a PVC annotation) past what the API server takes.
// Both were found by FuzzShardManagerAnswer.
func TestAnswerBoundsTheShardManager(t *testing.T) {
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		resp     *shardmanagerv1.RequestOperationResponse
		wantNext time.Duration
		wantLen  int // of the record's message
	}{{
		name:     "a denial hinting a century",
		resp:     &shardmanagerv1.RequestOperationResponse{Decision: shardmanagerv1.Decision_DECISION_DENIED, Reason: "quorum", RetryAfter: durationpb.New(100 * 365 * 24 * time.Hour)},
		wantNext: deniedBackoffMax,
		wantLen:  len("denied: quorum"),
	}, {
		name:     "a denial hinting a minute",
		resp:     &shardmanagerv1.RequestOperationResponse{Decision: shardmanagerv1.Decision_DECISION_DENIED, Reason: "quorum", RetryAfter: durationpb.New(time.Minute)},
		wantNext: time.Minute,
		wantLen:  len("denied: quorum"),
	}, {
		name:     "a retry in 300 ms: the leaders are handed over then",
		resp:     &shardmanagerv1.RequestOperationResponse{Decision: shardmanagerv1.Decision_DECISION_RETRY_AFTER, Reason: "handoff", RetryAfter: durationpb.New(300 * time.Millisecond)},
		wantNext: 300 * time.Millisecond,
		wantLen:  len("retry after 300ms: handoff"),
	}, {
		name:     "a retry in 10 ms is asked after the least wait",
		resp:     &shardmanagerv1.RequestOperationResponse{Decision: shardmanagerv1.Decision_DECISION_RETRY_AFTER, Reason: "handoff", RetryAfter: durationpb.New(10 * time.Millisecond)},
		wantNext: minRetryAfter,
		wantLen:  len("retry after 200ms: handoff"),
	}, {
		name:     "a denial with a 400 KiB reason",
		resp:     &shardmanagerv1.RequestOperationResponse{Decision: shardmanagerv1.Decision_DECISION_DENIED, Reason: strings.Repeat("why ", 100<<10)},
		wantNext: deniedBackoff,
		wantLen:  len("denied: ") + maxMessage,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Reconciler{retries: map[string]retry{}, heard: map[string]bool{}}
			rec := &Record{ID: "ns/kv/kv-0/Evict/0a1b2c3d-1", Kind: KindEvict, State: appsv1alpha1.OperationRequested}
			got := r.answer(&pass{now: now}, rec, tc.resp, nil)
			if next, _ := r.due(rec.ID, now); next.Sub(now) != tc.wantNext {
				t.Errorf("asks again after %v, want %v", next.Sub(now), tc.wantNext)
			}
			if len(got.Message) != tc.wantLen {
				t.Errorf("message of %d bytes, want %d", len(got.Message), tc.wantLen)
			}
		})
	}
}
