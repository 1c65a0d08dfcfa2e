package conflicts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

var (
	pools    = schema.GroupResource{Group: "fleet.strata.dev", Resource: "pools"}
	conflict = apierrors.NewConflict(pools, "web", errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	notFound = apierrors.NewNotFound(pools, "web")
	// applyConflict is server-side apply's conflict over field ownership.
	applyConflict = apierrors.NewApplyConflict([]metav1.StatusCause{{
		Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "kubectl"`, Field: ".spec.capacity",
	}}, "Apply failed with 1 conflict")
)

func TestIsOptimistic(t *testing.T) {
	cases := map[string]struct {
		err  error
		want bool
	}{
		"no error":                        {err: nil, want: false},
		"a conflict":                      {err: conflict, want: true},
		"a wrapped conflict":              {err: fmt.Errorf("updating pool web: %w", conflict), want: true},
		"two wrapped conflicts":           {err: fmt.Errorf("node a: %w; node b: %w", conflict, conflict), want: true},
		"joined conflicts":                {err: errors.Join(conflict, fmt.Errorf("status: %w", conflict)), want: true},
		"a conflict joined with an error": {err: errors.Join(conflict, errors.New("broker unreachable")), want: false},
		"a conflict joined with NotFound": {err: errors.Join(fmt.Errorf("x: %w", conflict), notFound), want: false},
		"an empty join":                   {err: errors.Join(), want: false},
		"NotFound":                        {err: notFound, want: false},
		"a field ownership conflict":      {err: fmt.Errorf("applying: %w", applyConflict), want: false},
		"a text that reads like one":      {err: errors.New(conflict.Error()), want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := IsOptimistic(tc.err); got != tc.want {
				t.Errorf("IsOptimistic(%v) = %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}

func TestResult(t *testing.T) {
	later := reconcile.Result{RequeueAfter: time.Minute}
	other := errors.New("broker unreachable")
	cases := map[string]struct {
		res     reconcile.Result
		err     error
		want    reconcile.Result
		wantErr error
		wantLog []string
	}{
		"success keeps its result": {res: later, want: later},
		"a conflict is requeued quietly": {
			res: later, err: fmt.Errorf("writing status: %w", conflict),
			want:    reconcile.Result{Requeue: true}, //nolint:staticcheck // what Result returns
			wantLog: []string{`"level"=1 "msg"="Requeueing after a conflict: the object changed since it was read"`},
		},
		"another error is returned": {err: other, wantErr: other},
		"a conflict beside another error is returned": {
			err: errors.Join(conflict, other), wantErr: errors.Join(conflict, other),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var lines []string
			ctx := logr.NewContext(context.Background(), funcr.New(func(prefix, args string) {
				lines = append(lines, prefix+args)
			}, funcr.Options{Verbosity: 1}))
			got, err := Result(ctx, tc.res, tc.err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if fmt.Sprint(err) != fmt.Sprint(tc.wantErr) {
				t.Errorf("error = %v, want %v", err, tc.wantErr)
			}
			var gotLog []string
			for _, l := range lines {
				// The line ends with the conflict's text, which is the API's.
				before, _, _ := strings.Cut(l, ` "conflict"=`)
				gotLog = append(gotLog, before)
			}
			if diff := cmp.Diff(tc.wantLog, gotLog); diff != "" {
				t.Errorf("log lines (-want +got):\n%s", diff)
			}
		})
	}
}

// Requeue applies Result to what the reconciler returns.
func TestRequeue(t *testing.T) {
	r := Requeue(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
		return reconcile.Result{}, fmt.Errorf("updating pool web: %w", conflict)
	}))
	res, err := r.Reconcile(context.Background(), reconcile.Request{})
	if err != nil || !res.Requeue { //nolint:staticcheck // what Requeue returns
		t.Errorf("Reconcile = %+v, %v; want a requeue and no error", res, err)
	}
}
