// Command strata is the Strata compute platform: the local datacenter, the
// platform's components and the clients that talk to them. Run as
// kubectl-strata (a link to it on PATH), it is the kubectl plugin
// `kubectl strata`.
package main

import (
	"os"

	"github.com/strata-dev/strata/internal/cli"
)

func main() {
	os.Exit(cli.Execute())
}
