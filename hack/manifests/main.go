// Command manifests writes the guardrails of Strata's release manifests
// (config/guardrails/hub and config/guardrails/workload) from the objects
// that internal/workload/install applies in the local datacenter, so there
// is one source of truth. The webhook configurations reach the webhook
// through its Service instead of a URL, and carry no caBundle: `strata
// serve webhook` writes its CA there when it starts. `make generate` runs
// it; `make verify` fails when the checked-in files differ.
//
//	go run ./hack/manifests config/guardrails
package main

import (
	"fmt"
	"os"

	"github.com/strata-dev/strata/hack/manifests/guardrails"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: manifests DIR")
		os.Exit(2)
	}
	if err := guardrails.Write(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
