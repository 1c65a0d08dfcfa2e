// Package certs holds `strata certs`: client certificates of the local
// datacenter's broker, issued from the CA under the home.
package certs

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/localdc"
)

// NewCommand returns `strata certs`.
func NewCommand(g *globals.Flags) *cobra.Command {
	cmd := &cobra.Command{Use: "certs", Short: "Issue client certificates of the local datacenter's Compute Broker"}
	cmd.AddCommand(newIssue(g))
	return cmd
}

func newIssue(g *globals.Flags) *cobra.Command {
	var role, dir string
	cmd := &cobra.Command{
		Use:   "issue NAME --role ROLE",
		Short: "Issue a client certificate of the broker for NAME with a built-in role",
		Long: `Issue a client certificate of the local datacenter's Compute Broker, signed
by the CA under the home (HOME/pki): its common name is NAME, the identity
the broker records as the actor of what it does, and its organization the
group strata:ROLE, which holds the built-in role ROLE (` + strings.Join(configv1alpha1.BuiltinBrokerRoles, ", ") + `).
It writes NAME.crt and NAME.key (0600) to --dir; use them with
--tls-cert and --tls-key, e.g.

  strata certs issue alice --role viewer
  strata disruptions list --tls-cert alice.crt --tls-key alice.key

The certificate lasts a year. Keep the key to yourself: whoever has it is
NAME at the broker.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cert, key, err := localdc.IssueClientCertificate(g.Home, args[0], role, dir)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Issued %s (role %s): %s and %s\n", args[0], role, cert, key)
			return err
		},
	}
	cmd.Flags().StringVar(&role, "role", configv1alpha1.RoleViewer, "the built-in role: "+strings.Join(configv1alpha1.BuiltinBrokerRoles, ", "))
	cmd.Flags().StringVar(&dir, "dir", ".", "directory to write NAME.crt and NAME.key to")
	return cmd
}
