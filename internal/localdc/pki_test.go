package localdc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-dev/strata/internal/cluster/hub"
	"github.com/strata-dev/strata/internal/pki"
)

// TestEnsurePKI: the home's CA issues the broker's serving certificate,
// each hub controller's and the admin's, keys 0600; they are kept while
// valid and renewed within pkiRenewBefore of their end.
func TestEnsurePKI(t *testing.T) {
	home := t.TempDir()
	now := time.Now()
	if err := ensurePKI(home, now); err != nil {
		t.Fatal(err)
	}
	subjects := map[string]string{}
	dirs := []string{brokerServingCert, adminCert}
	for _, c := range hub.BrokerCallers {
		dirs = append(dirs, filepath.Join(hubClientCerts, c))
	}
	for _, dir := range dirs {
		cert, _, _, err := pki.LoadPair(PKIPath(home, dir, "tls.crt"), PKIPath(home, dir, "tls.key"))
		if err != nil {
			t.Fatal(err)
		}
		subjects[dir] = cert.Subject.CommonName + " " + strings.Join(cert.Subject.Organization, ",")
	}
	want := map[string]string{
		"broker":                       "strata-broker ",
		"admin":                        "strata-admin strata:admin",
		"hub/pool-controller":          "strata-hub/pool-controller strata:pool-manager",
		"hub/cluster-manager":          "strata-hub/cluster-manager strata:cluster-manager",
		"hub/maintenance-orchestrator": "strata-hub/maintenance-orchestrator strata:maintenance",
		"hub/remediation-controller":   "strata-hub/remediation-controller strata:remediation",
	}
	if diff := cmp.Diff(want, subjects); diff != "" {
		t.Errorf("certificates (-want +got):\n%s", diff)
	}
	for _, key := range []string{PKIPath(home, "ca.key"), PKIPath(home, adminCert, "tls.key"), PKIPath(home, brokerServingCert, "tls.key")} {
		st, err := os.Stat(key)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", key, st.Mode().Perm())
		}
	}
	admin, err := AdminCredentials(home)
	if err != nil {
		t.Fatalf("AdminCredentials: %v", err)
	}
	first, err := os.ReadFile(admin.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := ensurePKI(home, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(admin.CertFile); !bytes.Equal(first, again) {
		t.Error("a valid certificate was issued again")
	}
	if err := ensurePKI(home, now.Add(pkiCertLifetime-pkiRenewBefore/2)); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(admin.CertFile); bytes.Equal(first, again) {
		t.Error("a certificate within pkiRenewBefore of its end was not renewed")
	}
}

// TestIssueClientCertificate: `strata certs issue` writes NAME.crt and
// NAME.key (0600) with the role's group; bad input is named.
func TestIssueClientCertificate(t *testing.T) {
	home, out := t.TempDir(), t.TempDir()
	if _, _, err := IssueClientCertificate(home, "alice", "viewer", out); err == nil || !strings.Contains(err.Error(), "run `strata up` first") {
		t.Errorf("without a datacenter: %v, want to run strata up first", err)
	}
	if err := ensurePKI(home, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, role, want string }{
		{"alice", "superuser", `role "superuser" is not a built-in role of the broker`},
		{"../alice", "viewer", `name "../alice": a certificate needs a name`},
		{"", "viewer", `name "": a certificate needs a name`},
	} {
		if _, _, err := IssueClientCertificate(home, tc.name, tc.role, out); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("IssueClientCertificate(%q, %q) = %v, want %q", tc.name, tc.role, err, tc.want)
		}
	}
	certPath, keyPath, err := IssueClientCertificate(home, "alice", "viewer", out)
	if err != nil {
		t.Fatal(err)
	}
	if certPath != filepath.Join(out, "alice.crt") || keyPath != filepath.Join(out, "alice.key") {
		t.Errorf("wrote %s and %s", certPath, keyPath)
	}
	cert, _, _, err := pki.LoadPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := cert.Subject.CommonName + " " + strings.Join(cert.Subject.Organization, ","); got != "alice strata:viewer" {
		t.Errorf("subject = %s, want alice strata:viewer", got)
	}
	if st, err := os.Stat(keyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key %s: %v, %v; want mode 0600", keyPath, st.Mode(), err)
	}
}
