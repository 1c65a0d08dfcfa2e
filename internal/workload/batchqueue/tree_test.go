package batchqueue

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

func TestAnalyse(t *testing.T) {
	general := map[string]bool{"general": true}
	tests := []struct {
		name   string
		queues []appsv1alpha1.BatchQueue
		want   map[string]*verdict
	}{{
		name: "teams under their organisation's queue; a lone queue at the root",
		queues: queues(
			makeQueue("acme", "acme").Quota("general", "100", "", ""),
			makeQueue("acme-ml", "acme").Parent("acme").Quota("general", "10", "", ""),
			makeQueue("acme-etl", "acme").Parent("acme").Quota("general", "10", "", ""),
			makeQueue("solo", "globex").Quota("general", "1", "", "")),
		want: map[string]*verdict{
			"acme":     {Cohort: "org.acme", Children: []string{"acme-etl", "acme-ml"}, Profiles: []string{"general"}},
			"acme-ml":  {Parent: "acme", Cohort: "acme", Profiles: []string{"general"}},
			"acme-etl": {Parent: "acme", Cohort: "acme", Profiles: []string{"general"}},
			"solo":     {Cohort: "org.globex", Profiles: []string{"general"}},
		},
	}, {
		name: "a parent that is no queue",
		queues: queues(
			makeQueue("team", "acme").Parent("nobody").Quota("general", "1", "", "")),
		want: map[string]*verdict{
			"team": {Cohort: "org.acme", Profiles: []string{"general"}, Reason: appsv1alpha1.ParentNotFoundReason,
				Message: "parent nobody is no BatchQueue: until it exists, the queue borrows only within organisation acme"},
		},
	}, {
		name: "a parent of another organisation is ignored: no borrowing across organisations",
		queues: queues(
			makeQueue("globex", "globex").Quota("general", "100", "", ""),
			makeQueue("spy", "acme").Parent("globex").Quota("general", "1", "", "")),
		want: map[string]*verdict{
			"globex": {Cohort: "org.globex", Profiles: []string{"general"}},
			"spy": {Cohort: "org.acme", Profiles: []string{"general"}, Reason: appsv1alpha1.ParentInOtherOrganizationReason,
				Message: "parent globex belongs to organisation globex, not acme: quota is never borrowed across organisations, so the parent is ignored"},
		},
	}, {
		name: "a parent of another region is ignored",
		queues: queues(
			makeQueue("acme-eu", "acme").Region("eu").Quota("general", "100", "", ""),
			makeQueue("team", "acme").Parent("acme-eu").Quota("general", "1", "", "")),
		want: map[string]*verdict{
			"acme-eu": {Cohort: "org.acme", Profiles: []string{"general"}},
			"team": {Cohort: "org.acme", Profiles: []string{"general"}, Reason: appsv1alpha1.ParentInOtherRegionReason,
				Message: "parent acme-eu is for region eu, not (the whole fleet): a regional quota is lent only within its region, so the parent is ignored"},
		},
	}, {
		name: "a cycle: each queue of it goes to the root; a queue below it keeps its parent",
		queues: queues(
			makeQueue("a", "acme").Parent("c").Quota("general", "1", "", ""),
			makeQueue("b", "acme").Parent("a").Quota("general", "1", "", ""),
			makeQueue("c", "acme").Parent("b").Quota("general", "1", "", ""),
			makeQueue("below", "acme").Parent("a").Quota("general", "1", "", "")),
		want: map[string]*verdict{
			"a": {Cohort: "org.acme", Children: []string{"below"}, Profiles: []string{"general"}, Reason: appsv1alpha1.ParentCycleReason,
				Message: "parents make a cycle, a -> c -> b -> a: until it is broken, the queue borrows only within organisation acme"},
			"b": {Cohort: "org.acme", Profiles: []string{"general"}, Reason: appsv1alpha1.ParentCycleReason,
				Message: "parents make a cycle, b -> a -> c -> b: until it is broken, the queue borrows only within organisation acme"},
			"c": {Cohort: "org.acme", Profiles: []string{"general"}, Reason: appsv1alpha1.ParentCycleReason,
				Message: "parents make a cycle, c -> b -> a -> c: until it is broken, the queue borrows only within organisation acme"},
			"below": {Parent: "a", Cohort: "a", Profiles: []string{"general"}},
		},
	}, {
		name: "a node profile no Pool has is left out and named, with a parent problem first",
		queues: queues(
			makeQueue("team", "acme").Parent("gone").Quota("gpu-h100", "", "", "8").Quota("general", "4", "", "").Quota("arm", "1", "", "")),
		want: map[string]*verdict{
			"team": {Cohort: "org.acme", Profiles: []string{"general"}, Unknown: []string{"gpu-h100", "arm"},
				Reason: appsv1alpha1.ParentNotFoundReason,
				Message: "parent gone is no BatchQueue: until it exists, the queue borrows only within organisation acme; " +
					"no Pool has node profile gpu-h100, arm: its quota is left out until one does"},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := analyse(tc.queues, general)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
		})
	}
}
