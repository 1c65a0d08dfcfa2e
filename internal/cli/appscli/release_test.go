package appscli

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// TestReleaseActions checks what each release verb changes in the spec of
// a StatelessApp declared on the hub, what it says, and what it refuses.
func TestReleaseActions(t *testing.T) {
	paused := makeStatelessApp("web", 6).hubApp().version("1.1", "2").
		release("1.0", "1", "Paused", 2, "App failure in workload-2", "workload-1", "workload-2").obj()
	ownerPaused := paused.DeepCopy()
	ownerPaused.Spec.Fleet.Release.Paused = true
	resumed := paused.DeepCopy()
	resumed.Spec.Fleet.Release.ResumeVersion = "1.1"
	first := makeStatelessApp("web", 6).hubApp().release("", "", "Released", 1, "", "workload-1").obj()
	noFleet := makeStatelessApp("web", 6).obj()
	rolledBack := paused.DeepCopy()
	rolledBack.Spec.AppVersion, rolledBack.Spec.ConfigVersion = "1.0", "1"
	noConfigBefore := makeStatelessApp("web", 6).hubApp().version("1.1", "2").release("1.0", "", "Releasing", 1, "", "workload-1").obj()

	action := func(use string) releaseAction {
		for _, a := range releaseActions {
			if a.use == use {
				return a
			}
		}
		t.Fatalf("no release action %s", use)
		return releaseAction{}
	}
	tests := []struct {
		name, verb string
		app        *appsv1alpha1.StatelessApp
		// want is the spec after the change: nil when unchanged.
		want                  func(*appsv1alpha1.StatelessAppSpec)
		wantDone, wantChanged string
		wantErr               string
	}{
		{
			name: "resume sets the release's version", verb: "resume", app: paused,
			want: func(s *appsv1alpha1.StatelessAppSpec) { s.Fleet.Release.ResumeVersion = "1.1" },
			wantChanged: "the release of 1.1 (config 2) to shop/web resumed: it goes on to its next waves regardless of the App failure " +
				"that paused it (spec.fleet.release.resumeVersion 1.1)",
		},
		{
			name: "resume says the owner's pause holds it still", verb: "resume", app: ownerPaused,
			want: func(s *appsv1alpha1.StatelessAppSpec) { s.Fleet.Release.ResumeVersion = "1.1" },
			wantChanged: "the release of 1.1 (config 2) to shop/web resumed: it goes on to its next waves regardless of the App failure " +
				"that paused it (spec.fleet.release.resumeVersion 1.1); it is also paused by spec.fleet.release.paused: " +
				"kubectl strata release unpause shop/web lets it go on",
		},
		{
			name: "resume twice", verb: "resume", app: resumed,
			wantDone: "the release of 1.1 to shop/web is already resumed (spec.fleet.release.resumeVersion is 1.1)",
		},
		{
			name: "resume without a release", verb: "resume", app: noFleet,
			wantErr: "shop/web has no release to resume: the hub reports none yet (status.release)",
		},
		{
			name: "resume a complete release", verb: "resume", app: first,
			wantErr: "the release of 1.0 (config 1) to shop/web is complete (Released): there is nothing to resume",
		},
		{
			name: "rollback sets the versions before the release", verb: "rollback", app: paused,
			want:        func(s *appsv1alpha1.StatelessAppSpec) { s.AppVersion, s.ConfigVersion = "1.0", "1" },
			wantChanged: "shop/web rolled back to 1.0 (config 1) from 1.1 (config 2): every cluster goes back at once, without waves",
		},
		{
			name: "rollback to a version without config", verb: "rollback", app: noConfigBefore,
			want:        func(s *appsv1alpha1.StatelessAppSpec) { s.AppVersion, s.ConfigVersion = "1.0", "" },
			wantChanged: "shop/web rolled back to 1.0 from 1.1 (config 2): every cluster goes back at once, without waves",
		},
		{
			name: "rollback without a previous version is refused", verb: "rollback", app: first,
			wantErr: "cannot roll back shop/web: there is no previous version (status.release.previousAppVersion is empty: " +
				"no release has replaced a version yet); set spec.appVersion to the version wanted instead",
		},
		{
			name: "rollback twice", verb: "rollback", app: rolledBack,
			wantDone: "shop/web is already set to 1.0 (config 1), the version before the release of 1.1 (config 2)",
		},
		{
			name: "pause an app without spec.fleet", verb: "pause", app: noFleet,
			want: func(s *appsv1alpha1.StatelessAppSpec) {
				s.Fleet = &appsv1alpha1.Fleet{Release: appsv1alpha1.Release{Paused: true}}
			},
			wantChanged: "the release of shop/web paused: no new wave starts until kubectl strata release unpause shop/web; " +
				"the clusters already released keep their version",
		},
		{
			name: "pause twice", verb: "pause", app: ownerPaused,
			wantDone: "the release of shop/web is already paused (kubectl strata release unpause shop/web lets it go on)",
		},
		{
			name: "unpause", verb: "unpause", app: ownerPaused,
			want:        func(s *appsv1alpha1.StatelessAppSpec) { s.Fleet.Release.Paused = false },
			wantChanged: "the release of shop/web unpaused: it goes on with its next wave",
		},
		{
			name: "unpause a release an App failure paused points at resume", verb: "unpause", app: paused,
			wantDone: "the release of shop/web is not paused (spec.fleet.release.paused is not set); it stopped on an App failure: " +
				"kubectl strata release resume shop/web goes on regardless, kubectl strata release rollback shop/web goes back",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sa := tc.app.DeepCopy()
			done, changed, err := action(tc.verb).change(sa, "shop/web")
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff([]string{tc.wantDone, tc.wantChanged, tc.wantErr}, []string{done, changed, gotErr}); diff != "" {
				t.Errorf("done, changed, error (-want +got):\n%s", diff)
			}
			want := tc.app.Spec.DeepCopy()
			if tc.want != nil {
				tc.want(want)
			}
			if diff := cmp.Diff(*want, sa.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}
