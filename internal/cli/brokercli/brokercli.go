// Package brokercli holds what the broker's command groups share: how to
// reach the broker and how to print its answers.
package brokercli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/localdc"
	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/broker/brokerclient"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// Flags say how to reach the broker and how to print.
type Flags struct {
	Global    *globals.Flags
	Address   string
	TokenFile string
	CAFile    string
	CertFile  string
	KeyFile   string
	Output    string
}

// AddTo registers the flags on a command group.
func (f *Flags) AddTo(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.Address, "broker", "", "broker address, or the comma-separated addresses of its replicas: calls go to the one that leads "+
		"(default: the local datacenter's broker, else "+broker.DefaultAddress+")")
	fs.StringVar(&f.CAFile, "tls-ca", "", "CA certificate of a broker that serves TLS (default: the local datacenter's)")
	fs.StringVar(&f.CertFile, "tls-cert", "", "your client certificate: your identity at the broker (default: the local datacenter's admin certificate)")
	fs.StringVar(&f.KeyFile, "tls-key", "", "the key of --tls-cert")
	fs.StringVar(&f.TokenFile, "token-file", "", "file with the broker's static bearer token (legacy; refused in plaintext beyond loopback)")
	fs.StringVarP(&f.Output, "output", "o", "table", "output format: table, json or yaml")
}

// Client is a connection to the broker.
type Client struct {
	brokerv1.BrokerServiceClient
	conn *grpc.ClientConn
}

// Close closes the connection.
func (c *Client) Close() { _ = c.conn.Close() }

// Conn is the connection, for the other services of the broker's endpoint
// (the local datacenter's strata.sim.v1).
func (c *Client) Conn() grpc.ClientConnInterface { return c.conn }

// Dial connects to the broker named by the flags.
func (f *Flags) Dial() (*Client, error) {
	switch f.Output {
	case "table", "json", "yaml":
	default:
		return nil, fmt.Errorf("--output must be table, json or yaml, not %q", f.Output)
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	addr, creds := f.Address, localdc.BrokerCredentials{CAFile: f.CAFile, CertFile: f.CertFile, KeyFile: f.KeyFile}
	if addr == "" {
		addr = broker.DefaultAddress
		if local, err := localdc.BrokerAddress(f.Global.Home); err == nil {
			addr = local
			// The local datacenter's broker, as the person who runs it:
			// its admin certificate, unless told otherwise.
			if admin, err := localdc.AdminCredentials(f.Global.Home); err == nil {
				if creds.CAFile == "" {
					creds.CAFile = admin.CAFile
				}
				if creds.CertFile == "" && f.TokenFile == "" {
					creds.CertFile, creds.KeyFile = admin.CertFile, admin.KeyFile
				}
			}
		}
	}
	addrs, err := brokerclient.ParseAddresses(addr)
	if err != nil {
		return nil, fmt.Errorf("--broker: %w", err)
	}
	o := brokerclient.Options{Addresses: addrs}
	if creds.CAFile != "" {
		pool, err := brokerclient.LoadCAPool(creds.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		o.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if creds.CertFile != "" {
		if o.Certificate, err = brokerclient.NewKeyPair(creds.CertFile, creds.KeyFile); err != nil {
			return nil, fmt.Errorf("--tls-cert: %w", err)
		}
	}
	if f.TokenFile != "" {
		raw, err := os.ReadFile(f.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading --token-file: %w", err)
		}
		o.Token = strings.TrimSpace(string(raw))
	}
	conn, err := brokerclient.Dial(o)
	if err != nil {
		return nil, err
	}
	return &Client{BrokerServiceClient: brokerv1.NewBrokerServiceClient(conn), conn: conn}, nil
}

// Explain turns a gRPC error into one line for a person.
func Explain(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable:
			return fmt.Errorf("the broker is not reachable (%s): is `strata up` running? (--broker to point elsewhere)", st.Message())
		case codes.PermissionDenied:
			return fmt.Errorf("the broker refused: %s", st.Message())
		case codes.Unauthenticated:
			return fmt.Errorf("the broker does not know who you are: %s (--tls-cert and --tls-key: your client certificate)", st.Message())
		}
		return fmt.Errorf("%s: %s", st.Code(), st.Message())
	}
	return err
}

// Print writes msg as json or yaml, or calls table with a tab writer.
func (f *Flags) Print(out io.Writer, msg proto.Message, table func(w io.Writer)) error {
	switch f.Output {
	case "json", "yaml":
		raw, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(msg)
		if err != nil {
			return err
		}
		if f.Output == "yaml" {
			if raw, err = yaml.JSONToYAML(raw); err != nil {
				return err
			}
		}
		_, err = fmt.Fprintln(out, strings.TrimSpace(string(raw)))
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// EnumName shortens an enum value for a table: MACHINE_STATE_AVAILABLE -> available.
func EnumName(v fmt.Stringer, prefix string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(v.String(), prefix)), "_", "-")
}

// Dash shows an empty value as "-" in a table.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Actor shows who took a step: the authenticated identity, and the detail
// it added, as in "strata-hub/maintenance-orchestrator (for maintenance/r1)".
func Actor(identity, onBehalfOf string) string {
	if onBehalfOf == "" {
		return identity
	}
	return identity + " (for " + onBehalfOf + ")"
}

// With dials the broker, runs fn and closes the connection; a gRPC error
// from fn is explained for a person.
func (f *Flags) With(fn func(c *Client) error) error {
	c, err := f.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return Explain(fn(c))
}

// NewGroup returns a command group of broker verbs that share the flags.
func NewGroup(g *globals.Flags, use, short string, verbs ...func(*Flags) *cobra.Command) *cobra.Command {
	f := &Flags{Global: g}
	cmd := &cobra.Command{Use: use, Short: short}
	f.AddTo(cmd)
	for _, verb := range verbs {
		cmd.AddCommand(verb(f))
	}
	return cmd
}
