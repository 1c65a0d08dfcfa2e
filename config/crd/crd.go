// Package crd embeds Strata's generated CustomResourceDefinitions so that
// `strata up` and the tests install exactly what controller-gen wrote.
package crd

import "embed"

// FS holds the CRD manifests of this folder.
//
//go:embed *.yaml
var FS embed.FS

// Hub lists the CRDs the hub serves: the fleet API, app namespaces, batch
// queues and the StatelessApps declared on the hub (internal/workload/fleetapp
// divides them over their clusters).
var Hub = []string{
	"fleet.strata.dev_clusters.yaml",
	"fleet.strata.dev_pools.yaml",
	"fleet.strata.dev_maintenancerollouts.yaml",
	"apps.strata.dev_appnamespaces.yaml",
	"apps.strata.dev_batchqueues.yaml",
	"apps.strata.dev_statelessapps.yaml",
}

// Workload lists the CRDs every workload cluster serves: the apps that run
// there and their platform configuration.
var Workload = []string{
	"apps.strata.dev_appplatforms.yaml",
	"apps.strata.dev_statelessapps.yaml",
	"apps.strata.dev_statefulapps.yaml",
}
