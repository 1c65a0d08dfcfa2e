package brokercli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/testutil/testbroker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// TestBrokerList: --broker takes the replicas' addresses, comma-separated;
// calls reach the one that serves even when another does not answer.
func TestBrokerList(t *testing.T) {
	addr, _, _ := testbroker.StartServer(t, 20, 0)
	// A port nobody listens on: a replica that is down.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := lis.Addr().String()
	_ = lis.Close()

	cases := []struct {
		name    string
		broker  string
		wantErr string
	}{
		{name: "one address", broker: addr},
		{name: "a replica down, then the one that serves", broker: down + "," + addr},
		{name: "the one that serves, then a replica down", broker: addr + ", " + down},
		{name: "an empty entry", broker: addr + ",,", wantErr: `--broker: broker addresses "` + addr + `,,": an empty address in the list`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &Flags{Global: &globals.Flags{Home: t.TempDir()}, Address: tc.broker, Output: "table"}
			var machines int
			err := f.With(func(c *Client) error {
				for range 4 { // round robin would send some calls to a replica that is down
					resp, err := c.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{PageSize: 100})
					if err != nil {
						return err
					}
					machines = len(resp.GetMachines())
				}
				return nil
			})
			switch {
			case tc.wantErr != "":
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("--broker %q: %v, want %q", tc.broker, err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("--broker %q: %v", tc.broker, err)
			case machines != 20:
				t.Errorf("--broker %q lists %d machines, want 20", tc.broker, machines)
			}
		})
	}
}

// TestTokenInPlaintextRefused: --token-file to a broker that is not on
// loopback, without --tls-ca, is refused before anything is sent.
func TestTokenInPlaintextRefused(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &Flags{Global: &globals.Flags{Home: t.TempDir()}, Address: "broker.example.com:7443", TokenFile: token, Output: "table"}
	_, err := f.Dial()
	want := "refusing to send a bearer token in plaintext to broker.example.com:7443, which is not a loopback address"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Dial = %v, want %q", err, want)
	}
}
