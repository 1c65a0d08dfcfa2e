package serve

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeConfigRefused: each command that reads a configuration refuses,
// before it connects anywhere, a file with an unknown field, a value of the
// wrong type or an invalid value, and says which field.
func TestServeConfigRefused(t *testing.T) {
	const v = "apiVersion: config.strata.dev/v1alpha1\n"
	cases := []struct {
		name    string
		command string
		file    string
		wantErr string
	}{
		{name: "hub: unknown field", command: "hub", file: v + "kind: HubConfiguration\nbroker: {addresses: [b:1]}\nleaderElection: {leaseDurtion: 15s}\n",
			wantErr: `unknown field "leaderElection.leaseDurtion"`},
		{name: "hub: wrong type", command: "hub", file: v + "kind: HubConfiguration\nbroker: {addresses: [b:1]}\nclientConnection: {burst: many}\n",
			wantErr: "clientConnection.burst"},
		{name: "hub: invalid value", command: "hub", file: v + "kind: HubConfiguration\nbroker: {addresses: [b:1]}\nremediation: {notReadyThreshold: 0s}\n",
			wantErr: `remediation.notReadyThreshold: Invalid value: "0s": must be positive`},
		{name: "hub: missing broker", command: "hub", file: v + "kind: HubConfiguration\n",
			wantErr: "broker.addresses: Required value"},
		{name: "hub: another component's file", command: "hub", file: v + "kind: AppsConfiguration\nclusterName: wc1\n",
			wantErr: "the file holds config.strata.dev/v1alpha1, Kind=AppsConfiguration, want config.strata.dev/v1alpha1, Kind=HubConfiguration"},
		{name: "apps: no cluster", command: "apps", file: v + "kind: AppsConfiguration\n",
			wantErr: "clusterName: Required value"},
		{name: "apps: bad duration", command: "apps", file: v + "kind: AppsConfiguration\nclusterName: wc1\nleaderElection: {retryPeriod: often}\n",
			wantErr: "leaderElection.retryPeriod"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := NewCommand()
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			cmd.SetArgs([]string{tc.command, "--config", path, "--kubeconfig", filepath.Join(t.TempDir(), "none")})
			err := cmd.ExecuteContext(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("strata serve %s --config %s = %v, want an error naming the file and %q", tc.command, path, err, tc.wantErr)
			}
		})
	}
}
