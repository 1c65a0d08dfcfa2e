package batchqueue

import (
	"fmt"
	"slices"
	"strings"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// verdict is what the controller makes of one BatchQueue among the others:
// where it hangs in its organisation's Cohort tree, and what is wrong with
// it (a parent that cannot be followed, profiles no Pool has).
type verdict struct {
	// Parent is the parent the queue borrows from: spec.parent, or "" when
	// it has none or it cannot be followed.
	Parent string
	// Cohort is the Kueue Cohort the queue's object goes in: Parent, or its
	// organisation's root Cohort.
	Cohort string
	// Children are the queues whose Parent this is, sorted: a queue with
	// children is a Cohort in Kueue, one without a ClusterQueue.
	Children []string
	// Profiles are the node profiles of spec.quotas that some Pool has, in
	// spec order; Unknown are those no Pool has (left out of Kueue).
	Profiles, Unknown []string
	// Reason and Message are the Ready condition's when something is
	// wrong; Reason is "" when nothing is.
	Reason, Message string
}

// IsParent says whether the queue is a Cohort in Kueue.
func (v *verdict) IsParent() bool { return len(v.Children) > 0 }

// analyse judges every queue: parents are followed only within an
// organisation and a region, and not around a cycle (each queue of a cycle
// is put at its organisation's root until the cycle is broken); quotas of
// node profiles that no Pool has (profiles) are left out.
func analyse(queues []appsv1alpha1.BatchQueue, profiles map[string]bool) map[string]*verdict {
	byName := make(map[string]*appsv1alpha1.BatchQueue, len(queues))
	for i := range queues {
		byName[queues[i].Name] = &queues[i]
	}
	verdicts := make(map[string]*verdict, len(queues))
	var problems = map[string][]string{} // queue -> messages, reason first
	note := func(q, reason, msg string) {
		if len(problems[q]) == 0 {
			problems[q] = []string{reason}
		}
		problems[q] = append(problems[q], msg)
	}

	// The parents that can be followed, before cycles are looked for.
	edges := map[string]string{}
	for i := range queues {
		q := &queues[i]
		v := &verdict{}
		verdicts[q.Name] = v
		for _, quota := range q.Spec.Quotas {
			if profiles[quota.NodeProfile] {
				v.Profiles = append(v.Profiles, quota.NodeProfile)
			} else {
				v.Unknown = append(v.Unknown, quota.NodeProfile)
			}
		}
		p := q.Spec.Parent
		if p == "" {
			continue
		}
		parent, ok := byName[p]
		switch {
		case !ok:
			note(q.Name, appsv1alpha1.ParentNotFoundReason, fmt.Sprintf(
				"parent %s is no BatchQueue: until it exists, the queue borrows only within organisation %s", p, q.Spec.Organization))
		case parent.Spec.Organization != q.Spec.Organization:
			note(q.Name, appsv1alpha1.ParentInOtherOrganizationReason, fmt.Sprintf(
				"parent %s belongs to organisation %s, not %s: quota is never borrowed across organisations, so the parent is ignored",
				p, parent.Spec.Organization, q.Spec.Organization))
		case parent.Spec.Region != q.Spec.Region:
			note(q.Name, appsv1alpha1.ParentInOtherRegionReason, fmt.Sprintf(
				"parent %s is for region %s, not %s: a regional quota is lent only within its region, so the parent is ignored",
				p, regionName(parent.Spec.Region), regionName(q.Spec.Region)))
		default:
			edges[q.Name] = p
		}
	}
	for name := range edges {
		if cycle := cycleThrough(name, edges); cycle != nil {
			note(name, appsv1alpha1.ParentCycleReason, fmt.Sprintf(
				"parents make a cycle, %s: until it is broken, the queue borrows only within organisation %s",
				strings.Join(cycle, " -> "), byName[name].Spec.Organization))
		}
	}
	for name := range problems {
		delete(edges, name) // after every cycle is found: dropping an edge breaks them
	}

	for i := range queues {
		q := &queues[i]
		v := verdicts[q.Name]
		v.Parent = edges[q.Name]
		v.Cohort = kueue.OrganizationCohort(q.Spec.Organization)
		if v.Parent != "" {
			v.Cohort = v.Parent
			verdicts[v.Parent].Children = append(verdicts[v.Parent].Children, q.Name)
		}
		if len(v.Unknown) > 0 {
			note(q.Name, appsv1alpha1.NodeProfileUnknownReason, fmt.Sprintf(
				"no Pool has node profile %s: its quota is left out until one does", strings.Join(v.Unknown, ", ")))
		}
		if p := problems[q.Name]; len(p) > 0 {
			v.Reason, v.Message = p[0], strings.Join(p[1:], "; ")
		}
	}
	for _, v := range verdicts {
		slices.Sort(v.Children)
	}
	return verdicts
}

// cycleThrough returns the cycle of parents from name back to name
// ("a", "b", "a"), or nil when following the parents from name does not
// come back to it.
func cycleThrough(name string, edges map[string]string) []string {
	path := []string{name}
	seen := map[string]bool{name: true}
	for at := edges[name]; at != ""; at = edges[at] {
		path = append(path, at)
		if at == name {
			return path
		}
		if seen[at] {
			return nil // a cycle above name, not through it
		}
		seen[at] = true
	}
	return nil
}

// descendants are the queues below name in the verdicts' tree, leaves and
// parents, in depth-first order.
func descendants(name string, verdicts map[string]*verdict) []string {
	var out []string
	for _, child := range verdicts[name].Children {
		out = append(out, child)
		out = append(out, descendants(child, verdicts)...)
	}
	return out
}

func regionName(region string) string {
	if region == "" {
		return "(the whole fleet)"
	}
	return region
}
