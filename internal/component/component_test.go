package component

import (
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestHeldByAnother: a standby knows the leadership only from a Lease that
// has a holder and has not expired.
func TestHeldByAnother(t *testing.T) {
	key := types.NamespacedName{Namespace: "strata-system", Name: "strata-hub"}
	lease := func(holder string, renewed time.Duration) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](15),
				RenewTime: &metav1.MicroTime{Time: time.Now().Add(-renewed)},
			},
		}
	}
	cases := []struct {
		name    string
		lease   *coordinationv1.Lease
		wantErr string
	}{
		{name: "held", lease: lease("hub-a", time.Second)},
		{name: "no Lease", wantErr: "leadership unknown: reading Lease strata-system/strata-hub"},
		{name: "released", lease: lease("", time.Second), wantErr: "leadership unknown: Lease strata-system/strata-hub has no holder"},
		{name: "expired", lease: lease("hub-a", time.Hour), wantErr: "leadership unknown: Lease strata-system/strata-hub of hub-a expired at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var objs []client.Object
			if tc.lease != nil {
				objs = append(objs, tc.lease)
			}
			r := &readiness{lease: key, reader: fake.NewClientBuilder().WithScheme(leaseScheme).WithObjects(objs...).Build()}
			err := r.heldByAnother(t.Context())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("heldByAnother = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("heldByAnother = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}
