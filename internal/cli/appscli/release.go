package appscli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// releaseAction is one verb of `kubectl strata release`: it changes the
// spec of a StatelessApp declared on the hub (change), or says why it
// will not (an error) or need not (done, with nothing changed).
type releaseAction struct {
	use, short, long string
	// change edits sa; done says, instead, why nothing needs changing.
	// ref names the app in messages (APP/NAME).
	change func(sa *appsv1alpha1.StatelessApp, ref string) (done, changed string, err error)
}

// releaseActions are pause, unpause, resume and rollback.
var releaseActions = []releaseAction{
	{
		use:   "pause",
		short: "Pause the release of an app declared on the hub before its next wave (spec.fleet.release.paused)",
		long: `Sets spec.fleet.release.paused of the StatelessApp declared on the hub: no new
wave starts (the clusters already released keep the new version) until
unpause.`,
		change: pauseRelease(true),
	},
	{
		use:    "unpause",
		short:  "Let a release paused by pause go on (clears spec.fleet.release.paused)",
		long:   `Clears spec.fleet.release.paused of the StatelessApp declared on the hub: its release goes on with its next wave.`,
		change: pauseRelease(false),
	},
	{
		use:   "resume",
		short: "Go on with a release that an App failure paused, regardless of the failure (spec.fleet.release.resumeVersion)",
		long: `Sets spec.fleet.release.resumeVersion of the StatelessApp declared on the hub
to the version of its release (status.release.appVersion): the release goes
on to its next waves regardless of the App failure that paused it.`,
		change: resumeRelease,
	},
	{
		use:   "rollback",
		short: "Set an app declared on the hub back to the version before its release: every cluster goes back at once",
		long: `Sets spec.appVersion and spec.configVersion of the StatelessApp declared on
the hub to the versions every cluster ran before its release
(status.release.previousAppVersion and previousConfigVersion): every cluster
goes back at once, without waves. Refused when there is no previous version.`,
		change: rollbackRelease,
	},
}

// newRelease returns `release`: the verbs that steer the release of a
// StatelessApp declared on the hub, each a merge patch of its spec as the
// caller.
func newRelease(h hub) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Steer the release of an app declared on the hub: pause, unpause, resume, rollback",
		Long: `A StatelessApp declared on the hub releases a new version to its clusters in
waves: the canary cluster first, then the others, each wave once the last
has been Ready for a while. An App failure in a released cluster pauses the
release; these verbs go on (resume), go back (rollback), or hold it
(pause, unpause). Each patches the StatelessApp on the hub as you.
APP is the app (an AppNamespace's spec.app or name); /STATELESSAPP names
the StatelessApp when the app's namespace on the hub holds several.`,
		Args: cobra.NoArgs,
	}
	for _, a := range releaseActions {
		o := &releaseOptions{hub: h, action: a}
		cmd.AddCommand(&cobra.Command{
			Use:     a.use + " APP[/STATELESSAPP]",
			Short:   a.short,
			Long:    a.long,
			Example: fmt.Sprintf("  kubectl strata release %s shop\n  kubectl strata release %s shop/web", a.use, a.use),
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.run(cmd.Context(), cmd.OutOrStdout(), args[0])
			},
		})
	}
	return cmd
}

type releaseOptions struct {
	hub    hub
	action releaseAction
}

func (o *releaseOptions) run(ctx context.Context, out io.Writer, arg string) error {
	c, an, sa, err := findHubApp(ctx, o.hub, arg)
	if err != nil {
		return err
	}
	ref := an.Spec.App + "/" + sa.Name
	patch := client.MergeFromWithOptions(sa.DeepCopy(), client.MergeFromWithOptimisticLock{})
	done, changed, err := o.action.change(sa, ref)
	if err != nil {
		return err
	}
	if done != "" {
		_, err := fmt.Fprintln(out, done)
		return err
	}
	if err := c.Patch(ctx, sa, patch); err != nil {
		switch {
		case apierrors.IsConflict(err):
			return fmt.Errorf("StatelessApp %s/%s changed on the hub while it was being patched: run the command again", sa.Namespace, sa.Name)
		case apierrors.IsForbidden(err):
			return &accessError{forbidden: true, msg: fmt.Sprintf("forbidden: user %s may not patch StatelessApp %s in namespace %s of the hub "+
				"(steering a release needs patch on statelessapps.apps.strata.dev in the app's namespace on the hub: ask the platform team)",
				hubUser(ctx, c), sa.Name, sa.Namespace)}
		case apierrors.IsInvalid(err):
			return fmt.Errorf("the hub refused the change of StatelessApp %s/%s: %w", sa.Namespace, sa.Name, err)
		}
		return fmt.Errorf("patching StatelessApp %s/%s on the hub: %w (%s)", sa.Namespace, sa.Name, err, o.hub.Hint())
	}
	_, err = fmt.Fprintln(out, changed)
	return err
}

// findHubApp finds the StatelessApp declared on the hub that APP[/NAME]
// names: NAME in the app's namespaces on the hub, else the one named APP,
// else the only one.
func findHubApp(ctx context.Context, h hub, arg string) (client.Client, *appsv1alpha1.AppNamespace, *appsv1alpha1.StatelessApp, error) {
	app, name, err := splitApp(arg, "")
	if err != nil {
		return nil, nil, nil, err
	}
	all, err := appNamespaces(ctx, h)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := h.Client()
	if err != nil {
		return nil, nil, nil, err
	}
	found, err := findApp(all, app)
	if err != nil {
		if name != "" {
			return nil, nil, nil, err
		}
		// APP may be a StatelessApp declared on the hub, named alone, as
		// the hub's release messages name it.
		an, sa := hubAppNamed(ctx, c, all, app)
		if sa == nil {
			return nil, nil, nil, err
		}
		return c, an, sa, nil
	}
	type candidate struct {
		an *appsv1alpha1.AppNamespace
		sa appsv1alpha1.StatelessApp
	}
	var candidates []candidate
	var namespaces []string
	for i := range found {
		ns := hubNamespaceOf(&found[i])
		if slices.Contains(namespaces, ns) {
			continue
		}
		namespaces = append(namespaces, ns)
		apps, err := listHubApps(ctx, c, ns)
		switch {
		case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
			return nil, nil, nil, fmt.Errorf("the hub serves no StatelessApps: apps cannot be declared on it (%s)", h.Hint())
		case apierrors.IsForbidden(err):
			return nil, nil, nil, &accessError{forbidden: true, msg: fmt.Sprintf("forbidden: user %s may not list StatelessApps in namespace %s of the hub "+
				"(steering a release needs get, list and patch on statelessapps.apps.strata.dev in the app's namespace on the hub: ask the platform team)",
				hubUser(ctx, c), ns)}
		case err != nil:
			return nil, nil, nil, fmt.Errorf("listing the StatelessApps of namespace %s on the hub: %w (%s)", ns, err, h.Hint())
		}
		for _, sa := range apps {
			candidates = append(candidates, candidate{an: &found[i], sa: sa})
		}
	}
	names := make([]string, 0, len(candidates))
	for _, cand := range candidates {
		names = append(names, cand.sa.Name)
	}
	pick := func(n string) *candidate {
		for i := range candidates {
			if candidates[i].sa.Name == n {
				return &candidates[i]
			}
		}
		return nil
	}
	where := "namespace " + strings.Join(namespaces, ", ")
	var got *candidate
	switch {
	case name != "":
		if got = pick(name); got == nil {
			has := "it has none"
			if len(names) > 0 {
				has = "it has " + strings.Join(names, ", ")
			}
			return nil, nil, nil, fmt.Errorf("app %s has no StatelessApp %s declared on the hub in %s (%s)", found[0].Spec.App, name, where, has)
		}
	case len(candidates) == 0:
		return nil, nil, nil, fmt.Errorf("app %s has no StatelessApp declared on the hub (in %s there): releases in waves are of apps declared on the hub; "+
			"a StatelessApp in a workload cluster is changed there", found[0].Spec.App, where)
	case pick(app) != nil:
		got = pick(app)
	case len(candidates) == 1:
		got = &candidates[0]
	default:
		return nil, nil, nil, fmt.Errorf("app %s has several StatelessApps declared on the hub (%s): name one, as %s/%s",
			found[0].Spec.App, strings.Join(names, ", "), found[0].Spec.App, names[0])
	}
	return c, got.an, &got.sa, nil
}

// hubAppNamed is the only StatelessApp declared on the hub named name,
// with its AppNamespace; nil when there is none, several, or the caller
// may not list them in all namespaces.
func hubAppNamed(ctx context.Context, c client.Client, all []appsv1alpha1.AppNamespace, name string) (*appsv1alpha1.AppNamespace, *appsv1alpha1.StatelessApp) {
	apps, err := listHubApps(ctx, c, "")
	if err != nil {
		return nil, nil
	}
	apps = slices.DeleteFunc(apps, func(sa appsv1alpha1.StatelessApp) bool { return sa.Name != name })
	if len(apps) != 1 {
		return nil, nil
	}
	for i := range all {
		if hubNamespaceOf(&all[i]) == apps[0].Namespace {
			return &all[i], &apps[0]
		}
	}
	return nil, nil
}

// pauseRelease sets spec.fleet.release.paused to paused.
func pauseRelease(paused bool) func(*appsv1alpha1.StatelessApp, string) (string, string, error) {
	return func(sa *appsv1alpha1.StatelessApp, ref string) (string, string, error) {
		now := sa.Spec.Fleet != nil && sa.Spec.Fleet.Release.Paused
		switch {
		case now && paused:
			return fmt.Sprintf("the release of %s is already paused (kubectl strata release unpause %s lets it go on)", ref, ref), "", nil
		case !now && !paused:
			msg := fmt.Sprintf("the release of %s is not paused (spec.fleet.release.paused is not set)", ref)
			if r := sa.Status.Release; r != nil && r.Phase == phasePaused {
				msg += fmt.Sprintf("; it stopped on an App failure: kubectl strata release resume %s goes on regardless, "+
					"kubectl strata release rollback %s goes back", ref, ref)
			}
			return msg, "", nil
		}
		if sa.Spec.Fleet == nil {
			sa.Spec.Fleet = &appsv1alpha1.Fleet{}
		}
		sa.Spec.Fleet.Release.Paused = paused
		if paused {
			return "", fmt.Sprintf("the release of %s paused: no new wave starts until kubectl strata release unpause %s; "+
				"the clusters already released keep their version", ref, ref), nil
		}
		return "", fmt.Sprintf("the release of %s unpaused: it goes on with its next wave", ref), nil
	}
}

// resumeRelease sets spec.fleet.release.resumeVersion to the version of
// the release.
func resumeRelease(sa *appsv1alpha1.StatelessApp, ref string) (string, string, error) {
	r := sa.Status.Release
	switch {
	case r == nil || r.AppVersion == "":
		return "", "", fmt.Errorf("%s has no release to resume: the hub reports none yet (status.release)", ref)
	case r.Phase == phaseReleased:
		return "", "", fmt.Errorf("the release of %s to %s is complete (Released): there is nothing to resume", version(r.AppVersion, r.ConfigVersion), ref)
	case sa.Spec.Fleet != nil && sa.Spec.Fleet.Release.ResumeVersion == r.AppVersion:
		return fmt.Sprintf("the release of %s to %s is already resumed (spec.fleet.release.resumeVersion is %s)", r.AppVersion, ref, r.AppVersion), "", nil
	}
	if sa.Spec.Fleet == nil {
		sa.Spec.Fleet = &appsv1alpha1.Fleet{}
	}
	sa.Spec.Fleet.Release.ResumeVersion = r.AppVersion
	msg := fmt.Sprintf("the release of %s to %s resumed: it goes on to its next waves regardless of the App failure that paused it "+
		"(spec.fleet.release.resumeVersion %s)", version(r.AppVersion, r.ConfigVersion), ref, r.AppVersion)
	switch {
	case sa.Spec.Fleet.Release.Paused:
		msg += fmt.Sprintf("; it is also paused by spec.fleet.release.paused: kubectl strata release unpause %s lets it go on", ref)
	case r.Phase == phaseWaiting:
		msg += "; it waits on the infrastructure or an unreachable cluster, which it does by itself until that is back"
	case r.Phase != phasePaused && r.Phase != phaseBlocked:
		msg += fmt.Sprintf("; it was %s, not paused", cmp.Or(strings.ToLower(r.Phase), "in no phase yet"))
	}
	return "", msg, nil
}

// rollbackRelease sets the app's versions to those before its release.
func rollbackRelease(sa *appsv1alpha1.StatelessApp, ref string) (string, string, error) {
	r := sa.Status.Release
	if r == nil || r.PreviousAppVersion == "" {
		return "", "", errors.New("cannot roll back " + ref + ": there is no previous version (status.release.previousAppVersion is empty: " +
			"no release has replaced a version yet); set spec.appVersion to the version wanted instead")
	}
	prev := version(r.PreviousAppVersion, r.PreviousConfigVersion)
	if sa.Spec.AppVersion == r.PreviousAppVersion && sa.Spec.ConfigVersion == r.PreviousConfigVersion {
		return fmt.Sprintf("%s is already set to %s, the version before the release of %s", ref, prev, version(r.AppVersion, r.ConfigVersion)), "", nil
	}
	from := version(sa.Spec.AppVersion, sa.Spec.ConfigVersion)
	sa.Spec.AppVersion, sa.Spec.ConfigVersion = r.PreviousAppVersion, r.PreviousConfigVersion
	return "", fmt.Sprintf("%s rolled back to %s from %s: every cluster goes back at once, without waves", ref, prev, from), nil
}
