package cluster

import "testing"

func TestFailedChecks(t *testing.T) {
	cases := map[string]struct{ readyz, want string }{
		"failed checks only": {
			readyz: "[+]ping ok\n[-]poststarthook/rbac/bootstrap-roles failed: reason withheld\n[+]etcd ok\n[-]etcd-readiness failed\nreadyz check failed\n",
			want:   "poststarthook/rbac/bootstrap-roles failed: reason withheld; etcd-readiness failed",
		},
		"no check lines": {readyz: "  service unavailable\n", want: "service unavailable"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := failedChecks(tc.readyz); got != tc.want {
				t.Errorf("failedChecks = %q, want %q", got, tc.want)
			}
		})
	}
}
