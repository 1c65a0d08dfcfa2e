package e2e

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
)

// auditEvent is what the test reads of an audit.k8s.io/v1 Event.
type auditEvent struct {
	Verb string `json:"verb"`
	User struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Name        string `json:"name"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// testJoinIdentity checks, after Pools joined machines to workload-2
// (testPools), what issue 15 asks of a local datacenter that ran: each
// Node was created by its own machine as system:node:<name>, as the
// workload cluster's audit log shows, and the broker's database (the
// SQLite file, or over PostgreSQL every row of its schema) holds no
// kubeconfig and no private key.
func testJoinIdentity(t *testing.T, bin, home, dsn string) {
	waitPool(t, bin, localdc.KubeconfigPath(home, localdc.HubName), localdc.WorkloadClusterName(2)+"-"+localdc.DefaultProfile, "Ready", -1)
	nodes := clientset(t, localdc.KubeconfigPath(home, localdc.WorkloadClusterName(2)))
	all, err := nodes.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{LabelSelector: fleetv1alpha1.PoolLabel})
	if err != nil {
		t.Fatal(err)
	}
	list := all.Items
	if len(list) == 0 {
		t.Fatal("workload-2 has no Node of a Pool")
	}
	created := map[string]string{} // Node -> who created it
	log := localdc.AuditLogPath(home, localdc.WorkloadClusterName(2))
	f, err := os.Open(log)
	if err != nil {
		t.Fatalf("the workload cluster's audit log: %v", err)
	}
	defer f.Close() //nolint:errcheck // read only
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit log %s: %v", log, err)
		}
		if e.Verb == "create" && e.ObjectRef.Resource == "nodes" && e.ObjectRef.Subresource == "" && e.ResponseStatus.Code == 201 {
			created[e.ObjectRef.Name] = e.User.Username
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, n := range list {
		if got, want := created[n.Name], "system:node:"+n.Name; got != want {
			t.Errorf("Node %s was created by %q, want %q (audit log %s)", n.Name, got, want, log)
		}
	}

	dump := inventoryDump(t, home, dsn)
	for what, re := range map[string]*regexp.Regexp{
		// In clear or base64 (as schema 0002 stored it).
		"a kubeconfig":  regexp.MustCompile(`kind: Config|client-key-data|current-context|YXBpVmVyc2lvbj`),
		"a private key": regexp.MustCompile(`BEGIN [A-Z ]*PRIVATE KEY`),
	} {
		if loc := re.FindIndex(dump); loc != nil {
			t.Errorf("the broker's database holds %s: ...%s...", what, dump[max(0, loc[0]-40):min(len(dump), loc[1]+40)])
		}
	}
	if !bytes.Contains(dump, []byte("BEGIN CERTIFICATE")) {
		t.Error("the broker's database holds no CA certificate: the dump read nothing of the join targets")
	}
}

// inventoryDump is the broker's database as bytes: the SQLite file and its
// write-ahead log, or every row of the PostgreSQL schema as text.
func inventoryDump(t *testing.T, home, dsn string) []byte {
	t.Helper()
	if dsn == "" {
		var out []byte
		for _, suffix := range []string{"", "-wal"} {
			raw, err := os.ReadFile(filepath.Join(home, "broker.db"+suffix))
			if err != nil && (suffix == "" || !os.IsNotExist(err)) {
				t.Fatal(err)
			}
			out = append(out, raw...)
		}
		return out
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close() //nolint:errcheck // read only
	rows, err := db.QueryContext(t.Context(), `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, table := range tables {
		// Each row as its text form: every column, whatever its type.
		rows, err := db.QueryContext(t.Context(), `SELECT t::text FROM "`+table+`" t`)
		if err != nil {
			t.Fatalf("reading table %s: %v", table, err)
		}
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				t.Fatal(err)
			}
			out.WriteString(row)
			out.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		_ = rows.Close()
	}
	if !strings.Contains(out.String(), "workload-2") {
		t.Fatalf("the PostgreSQL dump of %d tables names no cluster: wrong schema?", len(tables))
	}
	return []byte(out.String())
}
