package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// testBrokerCLI drives the local datacenter's Compute Broker with the strata
// CLI: the seeded inventory, a node profile, and a bare pool (no cluster)
// grown, shrunk and deleted, balanced across the 20 maintenance zones.
func testBrokerCLI(t *testing.T, bin, home string) {
	strata := func(args ...string) string {
		return run(t, bin, "strata", append([]string{"--home", home}, args...)...)
	}
	var machines struct {
		Machines []struct {
			ID              string `json:"id"`
			MaintenanceZone int32  `json:"maintenance_zone"`
			State           string `json:"state"`
		} `json:"machines"`
	}
	decode := func(out string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("decoding %q: %v", out, err)
		}
	}
	// webPerZone counts the machines of pool web per MZ.
	webPerZone := func() map[int32]int {
		machines.Machines = nil // an empty list is omitted from the JSON
		decode(strata("machines", "list", "--pool", "web", "--all", "-o", "json"), &machines)
		counts := map[int32]int{}
		for _, m := range machines.Machines {
			counts[m.MaintenanceZone]++
		}
		return counts
	}
	uniformZones := func(counts map[int32]int, n int) bool {
		if len(counts) != 20 {
			return false
		}
		for _, c := range counts {
			if c != n {
				return false
			}
		}
		return true
	}

	decode(strata("machines", "list", "--all", "-o", "json"), &machines)
	if len(machines.Machines) != 2000 {
		t.Fatalf("the simulated datacenter has %d machines, want 2000", len(machines.Machines))
	}
	machines.Machines = nil
	decode(strata("machines", "list", "--mz", "7", "--all", "-o", "json"), &machines)
	for _, m := range machines.Machines {
		if m.MaintenanceZone != 7 {
			t.Fatalf("machines list --mz 7 shows %s of MZ %d", m.ID, m.MaintenanceZone)
		}
	}
	if len(machines.Machines) != 100 {
		t.Errorf("MZ 7 has %d machines, want 2000/20", len(machines.Machines))
	}
	strata("profiles", "create", "batch", "--min-cpu", "32", "--min-memory-gib", "128", "--node-config", "kubelet-1.37-batch")
	if out := strata("pools", "create", "web", "--profile", "batch", "--capacity", "40"); !strings.Contains(out, "40 machines allocated") {
		t.Errorf("pools create said:\n%s", out)
	}
	if c := webPerZone(); !uniformZones(c, 2) {
		t.Errorf("pool of 40 per MZ = %v, want 2 in each of 20", c)
	}
	strata("pools", "scale", "web", "100")
	if c := webPerZone(); !uniformZones(c, 5) {
		t.Errorf("pool of 100 per MZ = %v, want 5 in each of 20", c)
	}
	strata("pools", "scale", "web", "60")
	if c := webPerZone(); !uniformZones(c, 3) {
		t.Errorf("pool of 60 per MZ = %v, want 3 in each of 20", c)
	}
	strata("pools", "delete", "web", "--force")
	if c := webPerZone(); len(c) != 0 {
		t.Errorf("deleted pool still holds machines: %v", c)
	}
	out, err := runErr(bin, "strata", "--home", home, "pools", "create", "bad", "--profile", "nope", "--capacity", "1")
	if err == nil || !strings.Contains(out, `InvalidArgument: pool.node_profile "nope" does not exist`) {
		t.Errorf("a pool of an unknown profile: err=%v, output:\n%s", err, out)
	}

	// Identities: the CLI is the home's admin; a viewer's certificate,
	// issued from the home's CA, reads but may not ask for a disruption,
	// and nothing is written.
	certs := t.TempDir()
	strata("certs", "issue", "alice", "--role", "viewer", "--dir", certs)
	asAlice := []string{"--tls-cert", filepath.Join(certs, "alice.crt"), "--tls-key", filepath.Join(certs, "alice.key")}
	strata(append([]string{"machines", "list", "--mz", "7"}, asAlice...)...)
	before := strata("disruptions", "list", "-o", "json")
	out, err = runErr(bin, "strata", append([]string{"--home", home, "disruptions", "create", "dc1-r001-u01", "--reason", "hardware-repair"}, asAlice...)...)
	if err == nil || !strings.Contains(out, "the broker refused: alice (groups strata:viewer) may not call CreateDisruption") {
		t.Errorf("a viewer creates a disruption: err=%v, output:\n%s", err, out)
	}
	if after := strata("disruptions", "list", "-o", "json"); after != before {
		t.Errorf("a refused disruption changed the list:\n%s\nthen:\n%s", before, after)
	}
}
